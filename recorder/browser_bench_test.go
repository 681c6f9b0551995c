package recorder_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/performance"
	"github.com/chromedp/chromedp"

	"github.com/trailmap/trailmap/internal/browsertest"
	"github.com/trailmap/trailmap/internal/servertest"
)

// mainThread is what one run of the mutation page cost the renderer's main
// thread, per second of the run.
type mainThread struct {
	taskMS, scriptMS float64 // Chrome's TaskDuration and ScriptDuration (thread CPU time)
	longTasks        float64 // PerformanceObserver 'longtask' entries
	longTaskMS       float64
	mutations        float64
}

// BenchmarkRecorderMainThread runs a page that makes 1,000 DOM mutations a
// second for a few seconds, with and without the recorder, and reports the
// main thread's busy time per second of each (Chrome's Performance metrics
// in thread time) and the long tasks the page's Performance API saw.
func BenchmarkRecorderMainThread(b *testing.B) {
	srv := servertest.Start(b)
	st := newSite(b, srv)
	br := browsertest.Start(b, browsertest.LoopbackOnly())
	const seconds = 4

	run := func(query string) mainThread {
		ctx := br.NewContext(b)
		if _, err := chromedp.Call(ctx, performance.Enable, performance.EnableParams{TimeDomain: performance.EnableTimeDomainThreadTicks}); err != nil {
			b.Fatal(err)
		}
		if err := chromedp.Do(ctx, chromedp.Navigate(st.URL+"/bench.html"+query), chromedp.Sleep(time.Second)); err != nil {
			b.Fatal(err)
		}
		before := metrics(b, ctx)
		res, err := chromedp.Run(ctx, chromedp.Evaluate[struct {
			Mutations  float64 `json:"mutations"`
			LongTasks  float64 `json:"longTasks"`
			LongTaskMS float64 `json:"longTaskMS"`
		}](`(function () {
  var lt = {n: 0, ms: 0};
  var po = new PerformanceObserver(function (l) { l.getEntries().forEach(function (e) { lt.n++; lt.ms += e.duration }) });
  po.observe({type: 'longtask'});
  return runMutations(`+strconv.Itoa(seconds)+`).then(function (r) {
    return new Promise(function (ok) { setTimeout(ok, 100) }).then(function () {
      po.disconnect();
      return {mutations: r.mutations, longTasks: lt.n, longTaskMS: lt.ms};
    });
  });
})()`, chromedp.EvalAwaitPromise))
		if err != nil {
			b.Fatal(err)
		}
		after := metrics(b, ctx)
		return mainThread{
			taskMS:     (after["TaskDuration"] - before["TaskDuration"]) * 1000 / seconds,
			scriptMS:   (after["ScriptDuration"] - before["ScriptDuration"]) * 1000 / seconds,
			longTasks:  res.LongTasks,
			longTaskMS: res.LongTaskMS,
			mutations:  res.Mutations / seconds,
		}
	}

	// Alternate the two, twice per iteration: the machine is shared and noisy.
	const pairs = 2
	var with, without mainThread
	for i := 0; i < b.N; i++ {
		for j := 0; j < pairs; j++ {
			with.add(run(""))
			without.add(run("?norec=1"))
		}
	}
	n := float64(b.N * pairs)
	b.ReportMetric(with.taskMS/n, "main-ms/s")
	b.ReportMetric(without.taskMS/n, "main-ms/s-norec")
	b.ReportMetric((with.taskMS-without.taskMS)/n, "recorder-ms/s")
	b.ReportMetric(with.scriptMS/n, "script-ms/s")
	b.ReportMetric(without.scriptMS/n, "script-ms/s-norec")
	b.ReportMetric(with.longTasks/n, "longtasks")
	b.ReportMetric(with.longTaskMS/n, "longtask-ms")
	b.ReportMetric(with.mutations/n, "mutations/s")
	b.ReportMetric(0, "ns/op")
}

func (m *mainThread) add(o mainThread) {
	m.taskMS += o.taskMS
	m.scriptMS += o.scriptMS
	m.longTasks += o.longTasks
	m.longTaskMS += o.longTaskMS
	m.mutations += o.mutations
}

func metrics(tb testing.TB, ctx context.Context) map[string]float64 {
	tb.Helper()
	res, err := chromedp.Call(ctx, performance.GetMetrics, cdp.Empty{})
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]float64{}
	for _, x := range res.Metrics {
		m[x.Name] = x.Value
	}
	return m
}
