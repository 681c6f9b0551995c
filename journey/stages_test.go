package journey

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
)

func TestStageFlow(t *testing.T) {
	eachFixture(t, func(t *testing.T, f *fixture) {
		ctx := context.Background()
		for _, st := range []Stage{
			{Name: "awareness", Rules: []Step{{Type: "page", Match: "/blog/*"}, {Type: "page", Match: "/"}}},
			{Name: "research", Rules: []Step{{Type: "page", Match: "/pricing"}, {Type: "page", Match: "/product/*"}, {Type: "page", Match: "/docs*"}}},
			{Name: "decision", Rules: []Step{{Type: "page", Match: "/cart"}, {Type: "page", Match: "/checkout*"}}},
			{Name: "onboarding", Rules: []Step{{Type: "event", Match: "signup"}}},
			{Name: "retention", Rules: []Step{{Type: "page", Match: "/app/*"}}},
		} {
			st.ProjectID = f.project
			if _, err := f.svc.CreateStage(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		// Q1 moves forward through every stage on two devices (identified
		// late); Q2 goes back to awareness and returns; Q3 matches no stage;
		// Q4 enters at research.
		f.session("q1-visitor", "desktop", at(0, "09:00"), pg(0, "/"), pg(mins(1), "/blog/a"), pg(mins(2), "/pricing"))
		f.session("q1b-visitor", "mobile", at(0, "12:00"), pg(0, "/cart"), ev(mins(1), "signup"))
		f.session("q1-visitor", "desktop", at(0, "15:00"), pg(0, "/app/home"))
		f.session("q2-visitor", "desktop", at(0, "10:00"), pg(0, "/pricing"), pg(mins(1), "/"), pg(mins(2), "/pricing"))
		f.session("q3-visitor", "desktop", at(0, "11:00"), pg(0, "/about"))
		f.session("q4-visitor", "desktop", at(0, "13:00"), pg(mins(1), "/cart"), pg(0, "/docs/x"))
		f.sync()
		f.visitor("q1-visitor", "u-q1")
		f.visitor("q1b-visitor", "u-q1")

		res, err := f.svc.StageFlowReport(ctx, StageFlowQuery{ProjectID: f.project, From: day, To: day.AddDate(0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if res.People != 3 {
			t.Errorf("people %d, want 3", res.People)
		}
		var stages []string
		for _, s := range res.Stages {
			stages = append(stages, fmt.Sprintf("%s people=%d sessions=%d entered=%d current=%d", s.Name, s.People, s.Sessions, s.Entered, s.Current))
		}
		wantStages := []string{
			"awareness people=2 sessions=2 entered=1 current=0",
			"research people=3 sessions=3 entered=2 current=1",
			"decision people=2 sessions=2 entered=0 current=1",
			"onboarding people=1 sessions=1 entered=0 current=0",
			"retention people=1 sessions=1 entered=0 current=1",
		}
		if !slices.Equal(stages, wantStages) {
			t.Errorf("stages\n got %q\nwant %q", stages, wantStages)
		}
		var trans []string
		for _, tr := range res.Transitions {
			trans = append(trans, fmt.Sprintf("%s -> %s = %d %v", tr.From, tr.To, tr.People, tr.Forward))
		}
		sort.Strings(trans)
		wantTrans := []string{
			"(start) -> awareness = 1 true",
			"(start) -> research = 2 true",
			"awareness -> research = 2 true",
			"decision -> onboarding = 1 true",
			"onboarding -> retention = 1 true",
			"research -> awareness = 1 false",
			"research -> decision = 2 true",
		}
		if !slices.Equal(trans, wantTrans) {
			t.Errorf("transitions\n got %q\nwant %q", trans, wantTrans)
		}

		t.Run("crud", func(t *testing.T) {
			ss, err := f.svc.Stages(ctx, f.project)
			if err != nil || len(ss) != 5 || ss[4].Name != "retention" || ss[4].Position != 5 {
				t.Fatalf("stages %+v %v", ss, err)
			}
			if _, err := f.svc.CreateStage(ctx, Stage{ProjectID: f.project, Name: "research", Rules: []Step{{Type: "page", Match: "/x"}}}); err == nil {
				t.Error("duplicate name accepted")
			}
			if _, err := f.svc.CreateStage(ctx, Stage{ProjectID: f.project, Name: "empty"}); err == nil {
				t.Error("stage without rules accepted")
			}
			st := ss[0]
			st.Rules = []Step{{Type: "page", Match: "/blog/*"}}
			up, err := f.svc.UpdateStage(ctx, st)
			if err != nil || len(up.Rules) != 1 {
				t.Fatalf("update %+v %v", up, err)
			}
			if err := f.svc.DeleteStage(ctx, st.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Stage(ctx, st.ID); err == nil {
				t.Error("deleted stage found")
			}
		})
	})
}
