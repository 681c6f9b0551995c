package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/trailmap/trailmap/internal/wal"
	"github.com/trailmap/trailmap/storage/index"
	"github.com/trailmap/trailmap/storage/sqldb"
)

// A batch the index refuses while it takes the others (a value no check
// foresaw, a bug in an observer) would otherwise be retried for ever, and
// every batch queued behind it would wait: the node stops indexing. So when
// a group of batches fails, each batch is tried alone (isolate); one that
// fails alone poisonStrikes times while other batches go through is taken
// out of its stage:
//
//   - stage 1 (core rows) quarantines it: the batch, as logged, goes to a
//     file under DataDir/quarantine with the error beside it, and leaves the
//     write-ahead log. At every start the node puts quarantined batches
//     back into the log and tries them again (a fixed release records them);
//     one that still fails goes back to the quarantine.
//   - stage 2 (facts) marks it observed without its facts: the recording
//     keeps every event (its segment is stored as usual), only the heatmap
//     and journey facts of that one batch are missing.
//
// When no batch goes through, the index (or an observer) is down, not the
// batch: the stage keeps retrying, /readyz reports it, as before. Errors that
// say the database is out of service (sqldb.IsUnavailable) never count
// against a batch.
const poisonStrikes = 2

// quarantineDir is where stage 1 puts the batches the index refuses.
func (c Config) quarantineDir() string { return filepath.Join(c.DataDir, "quarantine") }

// loneAfter is how many times a batch that is the only one failing fails
// alone before the probe may stand in for other batches going through for
// its first strike (with probeLone): a lone bad batch on a quiet node
// (nothing else comes, or nothing else can come: after stallAfter /readyz
// says the index is stalled and a balancer sends ingest elsewhere) is
// quarantined after about 2 s (its facts skipped after about 3 s in stage
// 2), before the node reports itself stalled, instead of waiting for other
// batches. When several fail and none goes through, the cause is not one
// batch.
const loneAfter = 4

// isolation says how isolate tries one batch and takes it out of the stage.
type isolation struct {
	try  func(*entry) error        // the batch alone, in its own transaction
	park func(*entry, error) error // takes a poisoned batch out of the stage
	// strikes is how many failed rounds poison a batch.
	strikes int
	// probeFirst: the probe (the index takes an empty transaction) stands
	// in for other batches going through also for a batch's first strike.
	// Without it only the later strikes may rest on the probe: the first
	// needs other batches going through in the same round (at start the
	// log's batches are all there is, so the replay sets it).
	probeFirst bool
	// probeLone: after loneAfter rounds the probe stands in for other
	// batches for the only batch failing. Where the probe tests what the
	// batch needs: the index (stage 1), and stage 2's observers, which
	// write into the index's transaction and depend on nothing else.
	probeLone bool
	// inOrder: a session's batches after one that failed are not tried in
	// that round (facts follow a session in seq order). Core rows need no
	// order, and there a session's later batches going through is the
	// evidence against the one that fails (also on a node that has no
	// other session).
	inOrder bool
}

// isolate tries each batch of group alone, in order, after the group failed
// as one (with inOrder, a session's batches after one that failed are not
// tried). It returns the batches done (taken, or parked) and those still
// waiting, in order, with the last error. A failed batch gets a strike only
// when the stage is otherwise healthy: some other batch went through in
// this round, or (see probeFirst) the index takes an empty transaction. An
// error that says the database is out of service ends the round at once
// and counts against no batch.
func (r *Recorder) isolate(group []*entry, iso isolation) (done, rest []*entry, err error) {
	type failure struct {
		e   *entry
		err error
	}
	var failed []failure
	blocked := map[sessKey]bool{}
	for i, e := range group {
		k := sessKey{e.b.ProjectID, e.b.SessionID}
		if iso.inOrder && blocked[k] {
			rest = append(rest, e)
			continue
		}
		if ferr := iso.try(e); ferr != nil {
			err = ferr
			if sqldb.IsUnavailable(ferr) {
				// The database is out of service: no use trying the
				// others (on SQLite each would wait out the busy timeout).
				return done, append(rest, group[i:]...), err
			}
			blocked[k] = true
			failed = append(failed, failure{e, ferr})
			rest = append(rest, e)
			continue
		}
		done = append(done, e)
	}
	if len(failed) == 0 {
		return done, nil, nil
	}
	others := len(done) > 0 // other batches went through
	probed := !others && r.probe() == nil
	parked := map[*entry]bool{}
	for _, f := range failed {
		f.e.failedAlone++
		lone := iso.probeLone && len(failed) == 1 && f.e.failedAlone >= loneAfter
		if !others && !(probed && (f.e.strikes > 0 || iso.probeFirst || lone)) {
			continue
		}
		if f.e.strikes++; f.e.strikes < iso.strikes {
			continue
		}
		if perr := iso.park(f.e, f.err); perr != nil {
			r.log.Error("take a poisoned batch out of the pipeline", "session", f.e.b.SessionID, "seq", f.e.b.Seq, slog.Any("error", perr))
			continue
		}
		parked[f.e] = true
		done = append(done, f.e)
	}
	rest = slices.DeleteFunc(rest, func(e *entry) bool { return parked[e] })
	return done, rest, err
}

// probe tells whether the index takes a write transaction at all.
func (r *Recorder) probe() error {
	return r.stmts.Tx(context.Background(), func(*index.IngestTx) error { return nil })
}

// quarantine writes a batch the index refuses (stage 1) to the quarantine,
// durably, with the error in a file beside it; the caller then lets it
// leave the log.
func (r *Recorder) quarantine(e *entry, cause error) error {
	dir := r.cfg.quarantineDir()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	name := quarantineName(e.b)
	note := fmt.Sprintf("project %d session %s seq %d\nquarantined %s\n%v\n",
		e.b.ProjectID, e.b.SessionID, e.b.Seq, r.now().UTC().Format(time.RFC3339), cause)
	if err := writeFileSync(filepath.Join(dir, name+".error"), []byte(note)); err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, name+".batch"), encodeBatch(e.b)); err != nil {
		return err
	}
	if err := wal.SyncDir(dir); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	r.mu.Lock() // Unflushed reads it
	e.quarantined = true
	r.mu.Unlock()
	r.m.quarantined.WithLabelValues("index").Inc()
	r.log.Error("quarantined a batch the index refuses while it takes others; it is tried again at the next start",
		"project", e.b.ProjectID, "session", e.b.SessionID, "seq", e.b.Seq, "file", filepath.Join(dir, name+".batch"), slog.Any("error", cause))
	return nil
}

// quarantineName is a quarantined batch's file name, without extension.
func quarantineName(b *Batch) string {
	return fmt.Sprintf("%d-%s-%d", b.ProjectID, b.SessionID, b.Seq)
}

// skipFacts marks a batch the observers refuse (stage 2) observed without
// its facts.
func (r *Recorder) skipFacts(e *entry, cause error) error {
	err := r.stmts.Tx(context.Background(), func(tx *index.IngestTx) error {
		_, err := tx.MarkObserved(context.Background(), e.sid, e.b.Seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark batch observed without facts: %w", err)
	}
	r.m.quarantined.WithLabelValues("facts").Inc()
	r.log.Error("skipped the facts (heatmaps, journeys) of a batch the observers refuse while they take others; its events are stored",
		"project", e.b.ProjectID, "session", e.b.SessionID, "seq", e.b.Seq, slog.Any("error", cause))
	return nil
}

// unquarantine puts the quarantined batches back into the log at start, to
// be recorded with the log's other batches (or quarantined again). A batch
// the log holds already (a crash came between its append and the file's
// removal) is not appended twice.
func (r *Recorder) unquarantine(ctx context.Context, entries []*entry) ([]*entry, error) {
	dir := r.cfg.quarantineDir()
	names, err := filepath.Glob(filepath.Join(dir, "*.batch"))
	if err != nil || len(names) == 0 {
		return entries, err
	}
	logged := map[sessKey]map[int64]bool{}
	for _, e := range entries {
		k := sessKey{e.b.ProjectID, e.b.SessionID}
		if logged[k] == nil {
			logged[k] = map[int64]bool{}
		}
		logged[k][e.b.Seq] = true
	}
	var back int
	for _, name := range names {
		rec, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read quarantined batch: %w", err)
		}
		b, err := decodeBatch(rec)
		if err != nil {
			// Not one of ours (or cut short): left where it is, for the
			// operator.
			r.log.Error("unreadable file in the quarantine, left there", "file", name, slog.Any("error", err))
			continue
		}
		if !logged[sessKey{b.ProjectID, b.SessionID}][b.Seq] {
			pos, err := r.wal.Append(ctx, rec)
			if err != nil {
				return nil, fmt.Errorf("return quarantined batch to the log: %w", err)
			}
			entries = append(entries, newEntry(b, pos))
			back++
		}
		if err := dropQuarantined(name); err != nil {
			return nil, err
		}
	}
	if back > 0 {
		r.log.Info("returned quarantined batches to the log, to try them again", "batches", back)
	}
	return entries, nil
}

// QuarantinedBatch is a batch in a node's quarantine, as `trailmap
// quarantine` lists it.
type QuarantinedBatch struct {
	File          string    `json:"file"`
	ProjectID     int64     `json:"project_id"`
	SessionID     string    `json:"session_id"`
	Seq           int64     `json:"seq"`
	Events        int       `json:"events"`
	Bytes         int64     `json:"bytes"` // raw event bytes
	QuarantinedAt time.Time `json:"quarantined_at"`
	Error         string    `json:"error"`
}

// Quarantined lists the batches in the quarantine of the node whose data
// directory is dataDir, oldest first. A file that does not read as a batch
// is listed with its error and no batch fields.
func Quarantined(dataDir string) ([]QuarantinedBatch, error) {
	names, err := filepath.Glob(filepath.Join(Config{DataDir: dataDir}.quarantineDir(), "*.batch"))
	if err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	out := []QuarantinedBatch{}
	for _, name := range names {
		q := QuarantinedBatch{File: name}
		if rec, err := os.ReadFile(name); err != nil {
			q.Error = err.Error()
		} else if b, err := decodeBatch(rec); err != nil {
			q.Error = "not a batch: " + err.Error()
		} else {
			q.ProjectID, q.SessionID, q.Seq, q.Events, q.Bytes = b.ProjectID, b.SessionID, b.Seq, len(b.Events), rawSize(b)
		}
		if note, err := os.ReadFile(strings.TrimSuffix(name, ".batch") + ".error"); err == nil {
			// The note: "project … seq …", "quarantined <RFC 3339>", the error.
			lines := strings.SplitN(string(note), "\n", 3)
			if len(lines) == 3 {
				q.QuarantinedAt, _ = time.Parse(time.RFC3339, strings.TrimPrefix(lines[1], "quarantined "))
				q.Error = strings.TrimSpace(lines[2])
			}
		}
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b QuarantinedBatch) int { return a.QuarantinedAt.Compare(b.QuarantinedAt) })
	return out, nil
}

// PurgeQuarantine deletes the quarantined batches of the node whose data
// directory is dataDir that are past their project's retention at now:
// received longer ago than keep says for the project (0: kept for ever),
// or of a project keep does not know (deleted). Retention deletes
// sessions from the index and the bucket; this is the copy of a batch only
// that node holds, which a start would otherwise record again. Files that
// do not read as batches are left to the operator. It returns how many
// batches it deleted.
func PurgeQuarantine(dataDir string, now time.Time, keep func(projectID int64) (maxAge time.Duration, ok bool)) (int, error) {
	dir := Config{DataDir: dataDir}.quarantineDir()
	names, err := filepath.Glob(filepath.Join(dir, "*.batch"))
	if err != nil {
		return 0, fmt.Errorf("quarantine: %w", err)
	}
	n := 0
	for _, name := range names {
		rec, err := os.ReadFile(name)
		if err != nil {
			return n, fmt.Errorf("quarantine: %w", err)
		}
		b, err := decodeBatch(rec)
		if err != nil {
			continue
		}
		age, ok := keep(b.ProjectID)
		if ok && (age <= 0 || now.Sub(time.UnixMilli(b.ReceivedAt)) <= age) {
			continue
		}
		if err := dropQuarantined(name); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		if err := wal.SyncDir(dir); err != nil {
			return n, fmt.Errorf("quarantine: %w", err)
		}
	}
	return n, nil
}

// dropQuarantined removes a quarantined batch file and its note: the note
// first, as a batch file without one still lists and a crash in between
// leaves the batch to the next start or purge.
func dropQuarantined(name string) error {
	for _, f := range []string{strings.TrimSuffix(name, ".batch") + ".error", name} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("quarantine: %w", err)
		}
	}
	return nil
}

func writeFileSync(name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}
