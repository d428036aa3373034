package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fwvet/fwvet/pipeline/gate"
	"github.com/fwvet/fwvet/pipeline/store"
	"github.com/fwvet/fwvet/pipeline/vet"
)

// gateFlags are the flags of the commands that work the gate's queue.
type gateFlags struct {
	pf         pipelineFlags
	dsn        string
	workers    int
	registries []string
	allowLocal bool
	jobTimeout time.Duration
	grace      time.Duration
	newSeg     bool
	vetNice    int
	// child runs each vet (see gate.Child); vetChild makes it.
	child *gate.Child
}

func (gf *gateFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&gf.dsn, "store", "", "verdict store DSN: sqlite:PATH (the queue and the tokens are kept in PATH-queue.db) or postgres://… (store, queue and tokens in that database, shared by every gate and worker; default: sqlite:$XDG_DATA_HOME/fwvet/verdicts.db)")
	f.StringVar(&gf.pf.policy, "policy", "", "policy file (YAML or JSON); default: the built-in default policy")
	f.StringArrayVar(&gf.pf.limits, "limit", nil, "change an unpack limit, as name=value (repeatable)")
	f.IntVar(&gf.pf.jobs, "jobs", 0, "files hashed at once in each vet (default: the number of CPUs)")
	f.StringVar(&gf.pf.attest.signKey, "sign-key", "", "sign each verdict as a SLSA verification summary with this PEM private key or KMS URI; GET /v1/verdicts answers with it")
	f.IntVar(&gf.workers, "workers", gate.DefaultWorkers, "vets run at once, each in a process of its own")
	f.IntVar(&gf.vetNice, "vet-nice", gate.ChildNice, "niceness added to each vet's process (0 to 19), so that lookups are answered first")
	f.StringArrayVar(&gf.registries, "allow-registry", nil, "accept images of this registry (HOST: any port, or HOST:PORT; repeatable); no registry is accepted by default")
	f.BoolVar(&gf.allowLocal, "allow-local", false, "accept local paths (files and directories on the service's machine)")
	f.DurationVar(&gf.jobTimeout, "job-timeout", gate.DefaultJobTimeout, "bound on one vet; a job whose worker died is retried after it")
	f.DurationVar(&gf.grace, "shutdown-grace", 30*time.Second, "on SIGTERM, how long running vets may finish before they are cancelled (and retried at the next start)")
	f.BoolVar(&gf.newSeg, "store-new-segment", false, "when the store's chain is broken, start a new segment instead of refusing to start")
	gf.pf.fetch.register(cmd)
	gf.pf.verify.register(cmd)
}

// open opens the store and the gate's queue and starts its workers
// (none when enqueueOnly); stop closes both.
func (gf *gateFlags) open(ctx context.Context, g *globals, enqueueOnly bool) (svc *gate.Service, stop func(), err error) {
	dsn := gf.dsn
	if dsn == "" {
		if dsn, err = store.DefaultDSN(); err != nil {
			return nil, nil, err
		}
	}
	qp, err := gate.QueuePath(dsn)
	if err != nil {
		return nil, nil, err
	}
	// The options are checked before the store is opened.
	gf.pf.format = "json"
	if _, err := g.pipeline(ctx, &gf.pf, nil); err != nil {
		return nil, nil, err
	}
	st, err := openStoreForWriting(ctx, dsn, gf.newSeg, g.log)
	if err != nil {
		return nil, nil, err
	}
	svc, err = gate.Open(ctx, gate.Config{
		Store:     st,
		QueuePath: qp,
		Pipeline: func(manifest []string) (*vet.Pipeline, error) {
			job := gf.pf
			job.manifest = manifest
			return g.pipeline(ctx, &job, st)
		},
		Child:           gf.child,
		Workers:         gf.workers,
		EnqueueOnly:     enqueueOnly,
		JobTimeout:      gf.jobTimeout,
		AllowRegistries: gf.registries,
		AllowLocal:      gf.allowLocal,
		Log:             g.log,
	})
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if err := svc.Start(ctx); err != nil {
		svc.Close(ctx)
		st.Close()
		return nil, nil, err
	}
	return svc, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gf.grace)
		defer cancel()
		if err := svc.Close(sctx); err != nil {
			g.log.WithError(err).Warn("stopping the queue")
		}
		st.Close()
	}, nil
}

func newServeCmd(g *globals) *cobra.Command {
	var (
		gf      gateFlags
		addr    string
		tlsCert string
		tlsKey  string
	)
	cmd := &cobra.Command{
		Use:   "serve --addr HOST:PORT --store sqlite:PATH|postgres://… [--policy FILE]",
		Short: "Run the gate service: an HTTP API that queues vets and answers verdicts",
		Long: `Serve runs the gate: POST /v1/vet queues a vet of a candidate against a
baseline, a bounded pool of workers vets the queue, and GET /v1/verdicts/{digest}
answers the latest verdict of a digest under the service's policy (pending,
unknown and error are answers of their own, never a pass). The queue is kept
in a SQLite file beside the verdict store (PATH-queue.db), or in the store's
PostgreSQL database, where several gates and fwvet worker processes share it,
so that a job queued or running when a process stops is vetted after all.

Every request but GET /healthz needs a bearer token (fwvet serve token add).
The service runs until SIGTERM or SIGINT, then stops accepting requests and
lets running vets finish for --shutdown-grace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (tlsCert == "") != (tlsKey == "") {
				return errors.New("--tls-cert and --tls-key go together")
			}
			ctx := cmd.Context()
			var err error
			if gf.child, err = vetChild(cmd, g, gf.vetNice); err != nil {
				return err
			}
			svc, stop, err := gf.open(ctx, g, false)
			if err != nil {
				return err
			}
			defer stop()
			return serveHTTP(ctx, g, addr, tlsCert, tlsKey, svc.Handler(), gf.grace)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "listen on this HOST:PORT")
	f.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this PEM certificate (with --tls-key)")
	f.StringVar(&tlsKey, "tls-key", "", "the PEM private key of --tls-cert")
	gf.register(cmd)
	cmd.AddCommand(newServeTokenCmd(g))
	return cmd
}

func newWorkerCmd(g *globals) *cobra.Command {
	var gf gateFlags
	cmd := &cobra.Command{
		Use:   "worker --store postgres://…",
		Short: "Work the gate's shared queue: vet what gates queued, with no HTTP API",
		Long: `Worker vets jobs from the queue of a PostgreSQL store that gates (fwvet serve)
fill, --workers at a time, and records their verdicts in that store. Any
number of workers on any number of machines share the queue: each job is
vetted by one of them, and a job whose worker died is vetted again by another
once --job-timeout has passed. It runs until SIGTERM or SIGINT, then lets
running vets finish for --shutdown-grace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !strings.HasPrefix(gf.dsn, "postgres://") && !strings.HasPrefix(gf.dsn, "postgresql://") {
				return errors.New("--store: a worker shares a PostgreSQL store's queue (postgres://…); a SQLite queue is worked by its fwvet serve")
			}
			ctx := cmd.Context()
			var err error
			if gf.child, err = vetChild(cmd, g, gf.vetNice); err != nil {
				return err
			}
			_, stop, err := gf.open(ctx, g, false)
			if err != nil {
				return err
			}
			defer stop()
			fmt.Fprintln(g.stderr, "fwvet worker: working the queue")
			<-ctx.Done()
			g.log.Info("shutting down")
			return nil
		},
	}
	gf.register(cmd)
	return cmd
}

// serveHTTP serves h on addr until ctx is done, then shuts the server down
// within grace.
func serveHTTP(ctx context.Context, g *globals, addr, cert, key string, h http.Handler, grace time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	scheme := "http"
	if cert != "" {
		scheme = "https"
	}
	done := make(chan error, 1)
	go func() {
		if cert != "" {
			done <- srv.ServeTLS(ln, cert, key)
		} else {
			done <- srv.Serve(ln)
		}
	}()
	fmt.Fprintf(g.stderr, "fwvet serve: listening on %s://%s\n", scheme, ln.Addr())
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	g.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		// A request still open when the grace ran out is cut: the
		// service was asked to stop, and stops (exit 0), as it would
		// had the client gone first.
		g.log.WithField("grace", grace).Warn("requests still open after the shutdown grace: closing them")
		if err := srv.Close(); err != nil {
			return err
		}
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newServeTokenCmd(g *globals) *cobra.Command {
	var dsn string
	cmd := &cobra.Command{Use: "token", Short: "Manage the gate's bearer tokens"}
	open := func(ctx context.Context) (*gate.Tokens, func() error, error) {
		if dsn == "" {
			var err error
			if dsn, err = store.DefaultDSN(); err != nil {
				return nil, nil, err
			}
		}
		qp, err := gate.QueuePath(dsn)
		if err != nil {
			return nil, nil, err
		}
		return gate.OpenTokens(ctx, qp)
	}
	var role string
	add := &cobra.Command{
		Use:   "add --role read|submit|review",
		Short: "Create a token and print it (once: only its hash is kept)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := gate.ParseRole(role)
			if err != nil {
				return fmt.Errorf("--role: %w", err)
			}
			t, closeDB, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeDB()
			tok, err := t.Add(cmd.Context(), r)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, tok)
			fmt.Fprintf(g.stderr, "fwvet: %s token %s added (revoke it with fwvet serve token revoke %s)\n", r, gate.ID(tok), gate.ID(tok))
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "", "read (GET), submit (POST /v1/vet, and read) or review (decisions, and read)")
	_ = add.MarkFlagRequired("role")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token by the id token add printed",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, closeDB, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer closeDB()
			n, err := t.Revoke(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("no live token has the id %s", args[0])
			}
			fmt.Fprintf(g.stderr, "fwvet: %d token(s) revoked\n", n)
			return nil
		},
	}
	for _, c := range []*cobra.Command{add, revoke} {
		c.Flags().StringVar(&dsn, "store", "", "verdict store DSN, sqlite:PATH: the tokens are kept in PATH-queue.db")
	}
	cmd.AddCommand(add, revoke)
	return cmd
}
