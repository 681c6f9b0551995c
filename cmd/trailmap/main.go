// Command trailmap is the Trailmap server and its admin commands.
//
//	trailmap serve                 run the server (flags below, or TRAILMAP_* env)
//	trailmap project create NAME   create a project, print {"id","name","write_key"}
//	trailmap project settings NAME [JSON]  print or change a project's settings
//	trailmap project identity-secret NAME  create or rotate the identify signing secret
//	trailmap token create NAME     create an API token, print {"name","token"}
//	trailmap forget --project P (--user ID | --visitor ID)  delete a person's data, print what went
//	trailmap cluster status        print the cluster's nodes, their sessions and its jobs
//	trailmap version               print the version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "trailmap:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "trailmap:", err)
		os.Exit(1)
	}
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

const usage = `usage:
  trailmap serve [flags]                 run the server (trailmap serve -h lists flags)
  trailmap project create NAME [--data]  create a project; prints {"id","name","write_key"}
  trailmap project settings NAME [JSON] [--replace] [--data]
                                         print a project's settings, or merge JSON keys into
                                         them (null removes one); prints the result
  trailmap project identity-secret NAME [--remove] [--data]
                                         create or rotate the secret that signs user ids for
                                         verified identify; prints {"project","identity_secret"} once
  trailmap token create NAME [--data]    create a dashboard API token; prints {"name","token"}
  trailmap user create EMAIL [--data] [--projects a,b]
                                         create a UI user; reads the password from stdin
  trailmap forget --project P (--user ID | --visitor ID) [--data] [--s3-*]
                                         delete every recording and row of a person (all
                                         devices of a user id, or one visitor); prints what
                                         was deleted as JSON; exit status 1 if some is left
  trailmap quarantine [--data]           list, as JSON, the batches this node's index refused
                                         while taking others (tried again at its next start)
  trailmap cluster status [--window 1h]  print, as JSON, the cluster's nodes (alive, stale or
                                         gone), the sessions each claimed within the window,
                                         those left to a stale or gone node, and the last start
                                         of each cluster-wide job
  trailmap version                       print the version

Every command takes --index-url (TRAILMAP_INDEX_URL): empty for DATA/index.db (SQLite),
or postgres://… for a PostgreSQL index shared by the server and these commands.`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"missing command\n" + usage}
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServe(args[1:], stderr)
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stderr)
	case "project", "token", "user":
		if args[0] == "project" && len(args) >= 2 && args[1] == "settings" {
			return projectSettings(ctx, args[2:], stdout, stderr)
		}
		if args[0] == "project" && len(args) >= 2 && args[1] == "identity-secret" {
			return projectIdentitySecret(ctx, args[2:], stdout, stderr)
		}
		if len(args) < 2 || args[1] != "create" {
			return usageError{fmt.Sprintf("unknown command %q\n%s", strings.Join(args, " "), usage)}
		}
		return create(ctx, args[0], args[2:], stdin, stdout, stderr)
	case "forget":
		return forget(ctx, args[1:], stdout, stderr)
	case "quarantine":
		return quarantine(ctx, args[1:], stdout, stderr)
	case "cluster":
		if len(args) < 2 || args[1] != "status" {
			return usageError{fmt.Sprintf("unknown command %q\n%s", strings.Join(args, " "), usage)}
		}
		return clusterStatus(ctx, args[2:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError{fmt.Sprintf("unknown command %q\n%s", args[0], usage)}
}

// envTwins sets every flag of fs not given on the command line from its
// TRAILMAP_* environment twin (--s3-endpoint ↔ TRAILMAP_S3_ENDPOINT).
func envTwins(fs *flag.FlagSet) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		env := "TRAILMAP_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// create runs the "X create NAME" admin commands against the index.
func create(ctx context.Context, what string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(what+" create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./data", "data directory (index and local blobs)")
	indexURL := indexURLFlag(fs)
	var projects *string
	if what == "user" {
		projects = fs.String("projects", "", "comma-separated projects (names or ids) the user may see; empty: an admin who sees every project")
	}
	if err := envTwins(fs); err != nil {
		return usageError{err.Error()}
	}
	// Accept the name before or after flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if name == "" && fs.NArg() > 0 {
		name = fs.Arg(0)
	}
	if name == "" {
		return usageError{fmt.Sprintf("trailmap %s create needs a name", what)}
	}
	db, err := openIndex(ctx, *data, *indexURL)
	if err != nil {
		return err
	}
	defer db.Close()
	var out any
	switch what {
	case "project":
		p, err := db.CreateProject(ctx, name, time.Now())
		if err != nil {
			return err
		}
		out = map[string]any{"id": p.ID, "name": p.Name, "write_key": p.WriteKey}
		if err := auditCLI(ctx, db, "project.create", p.Name, p.ID, nil); err != nil {
			return err
		}
	case "token":
		t, err := db.CreateToken(ctx, name, time.Now())
		if err != nil {
			return err
		}
		out = map[string]any{"name": t.Name, "token": t.Value}
		if err := auditCLI(ctx, db, "token.create", t.Name, 0, nil); err != nil {
			return err
		}
	case "user":
		u, err := createUser(ctx, db, name, *projects, stdin)
		if err != nil {
			return err
		}
		out = u
		if err := auditCLI(ctx, db, "user.create", name, 0, map[string]any{"projects": *projects}); err != nil {
			return err
		}
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(out)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if len(rev) > 12 {
				rev = rev[:12]
			}
			if dirty {
				rev += "-dirty"
			}
			return "dev-" + rev
		}
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "dev"
}
