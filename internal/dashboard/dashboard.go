// Package dashboard is Cutover's web dashboard, served under /ui by the
// server: applications, deployment groups and deployments, a live
// deployment page (instances × lifecycle events, blue/green waits, traffic,
// hook logs) and the blue/green controls.
//
// The dashboard holds no authority of its own. A signed-in session is an
// access key's identity, and every read and action is a call of the
// server's CodeDeploy entry point (Config.Serve) with that identity, so the
// key may do exactly what it may do over the API. Live updates are
// Server-Sent Events driven by the store's change feed. The same event
// stream, with a SigV4-signed GET instead of a session, wakes `cutover
// watch` and `cutover logs --follow`.
package dashboard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/changefeed"
	"github.com/cutoverhq/cutover/internal/hooklog"
	"github.com/cutoverhq/cutover/internal/metrics"
	"github.com/cutoverhq/cutover/internal/store"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/trigger"
)

//go:embed static
var assets embed.FS

// SessionKind is the store kind of sign-in sessions (key: SHA-256 of the
// cookie's token, so a database reader cannot hijack sessions).
const SessionKind = "uisession"

// Limits.
const (
	sessionCookie  = "cutover_session"
	csrfHeader     = "X-Cutover-Csrf"
	maxRequestBody = 64 << 10
	// DefaultSessionTTL is how long a sign-in lasts.
	DefaultSessionTTL = 12 * time.Hour
	// maxStreams bounds concurrent event streams per process; one access
	// key may hold maxStreamsPerKey of them and one account
	// maxStreamsPerAccount, so no tenant can lock the others out.
	maxStreams           = 1024
	maxStreamsPerKey     = 16
	maxStreamsPerAccount = 128
	// trafficRefresh is how often an open deployment stream re-reads the
	// routers' observed state (health, in-flight), which is process memory
	// and not in the store, so no change feed announces it.
	trafficRefresh = 2 * time.Second
)

// ops the dashboard may call: the reads it shows and the blue/green
// controls. Each goes through Config.Serve, so permissions apply as over
// the API.
var ops = map[string]bool{
	"ListApplications": true, "BatchGetApplications": true, "ListDeploymentGroups": true,
	"BatchGetDeploymentGroups": true, "ListDeployments": true, "BatchGetDeployments": true,
	"GetDeployment": true, "ListDeploymentTargets": true, "BatchGetDeploymentTargets": true,
	"ContinueDeployment": true, "StopDeployment": true,
	// Cutover's admin read of a group's current fleet (Config.Serve
	// routes it to the admin API, checked as a CodeDeploy read).
	"GetDeploymentGroupFleet": true,
}

// Config configures a Handler.
type Config struct {
	// Serve is the server's CodeDeploy entry point; ctx carries the caller.
	Serve func(ctx context.Context, op string, body []byte) (any, error)
	// Lookup returns an access key's caller identity and secret, or
	// ErrUnknownKey when the key does not exist (or no longer does).
	Lookup func(ctx context.Context, accessKeyID string) (awsjson.Caller, string, error)
	// Signed authenticates a SigV4-signed request (the CLI's streams).
	Signed func(r *http.Request) (awsjson.Caller, error)
	Store  store.Store
	Feed   *changefeed.Feed
	Logs   *hooklog.Service
	// Waits returns a deployment's phase and wait deadlines (any JSON).
	Waits func(ctx context.Context, id string) (any, error)
	// Members reports a target group's members (nil: no traffic layer).
	Members func(ctx context.Context, targetGroup string) ([]traffic.MemberStatus, error)
	// Rates reports the builtin router's traffic of the named target
	// groups, from the counters /metrics exports (nil: no metrics).
	Rates func(targetGroups ...string) []metrics.RouterRate
	// Deliveries reads a deployment's trigger delivery log (nil: none).
	Deliveries func(ctx context.Context, id string, limit int) ([]trigger.Delivery, error)
	// Visible reports whether the caller in ctx may see the deployment a
	// change of DeploymentTopic names (nil: every change wakes every list
	// stream). The list stream wakes only for those.
	Visible func(ctx context.Context, deploymentID string) (bool, error)
	// KeyTopic is the change feed topic of access keys: a stream re-checks
	// its key when that key changes, and ends once it is revoked.
	KeyTopic string
	// DeploymentTopic, MemberTopic and DeliveryTopic are the change feed
	// topics of deployments, target-group memberships and trigger
	// deliveries.
	DeploymentTopic, MemberTopic, DeliveryTopic string
	Secure                                      bool // cookies get Secure (also whenever the request came over TLS)
	SessionTTL                                  time.Duration
	Now                                         func() time.Time
	Logger                                      *slog.Logger
}

// Handler serves /ui.
type Handler struct {
	cfg  Config
	mux  *http.ServeMux
	quit chan struct{}
	once sync.Once
	sem  chan struct{}

	mu        sync.Mutex
	byKey     map[string]int // open streams per access key
	byAccount map[string]int // and per account
}

// New returns the handler.
func New(cfg Config) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), quit: make(chan struct{}), sem: make(chan struct{}, maxStreams),
		byKey: map[string]int{}, byAccount: map[string]int{}}
	static, _ := fs.Sub(assets, "static")
	h.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /ui/{$}", h.index)
	h.mux.HandleFunc("GET /ui", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ui/", http.StatusFound) })
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.mux.HandleFunc("POST /ui/logout", h.logout)
	h.mux.HandleFunc("GET /ui/session", h.session)
	h.mux.HandleFunc("POST /ui/api/{op}", h.api)
	h.mux.HandleFunc("GET /ui/deployment", h.deployment)
	h.mux.HandleFunc("GET /ui/logs", h.logs)
	h.mux.HandleFunc("GET /ui/triggers", h.deliveries)
	h.mux.HandleFunc("GET /ui/events", h.events)
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.mux.ServeHTTP(w, r)
}

// Shutdown ends the open event streams (http.Server.Shutdown does not
// cancel requests in flight; register it with RegisterOnShutdown).
func (h *Handler) Shutdown() { h.once.Do(func() { close(h.quit) }) }

func (h *Handler) index(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("static/index.html")
	if err != nil {
		http.Error(w, "missing asset", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// sessionRecord is a signed-in session as stored.
type sessionRecord struct {
	Caller  awsjson.Caller `json:"caller"`
	CSRF    string         `json:"csrf"`
	Expires time.Time      `json:"expires"`
}

func token() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sessionKey(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"__type":"InternalFailure","message":"encode"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeErr(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]string{"__type": typ, "message": msg})
}

// writeAPIErr answers an error of the API as the API would.
func (h *Handler) writeAPIErr(w http.ResponseWriter, r *http.Request, err error) {
	var ae *awsjson.Error
	if errors.As(err, &ae) {
		st := ae.Status
		if st == 0 {
			st = http.StatusBadRequest
		}
		writeErr(w, st, ae.Type, ae.Message)
		return
	}
	if r.Context().Err() != nil {
		return
	}
	h.cfg.Logger.Error("dashboard: internal failure", "path", r.URL.Path, "err", err)
	writeErr(w, http.StatusInternalServerError, "InternalFailure", "The request processing has failed because of an unknown error.")
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	var in struct {
		AccessKeyID     string `json:"accessKeyId"`
		SecretAccessKey string `json:"secretAccessKey"`
		Region          string `json:"region"`
	}
	// A cross-site form cannot send JSON without a CORS preflight, which
	// is never granted: no page elsewhere can sign a browser in here.
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); ct != "application/json" {
		writeErr(w, http.StatusUnsupportedMediaType, "SerializationException", "sign in with a JSON body")
		return
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 8<<10)).Decode(&in); err != nil {
		writeErr(w, http.StatusBadRequest, "SerializationException", "cannot decode sign-in request")
		return
	}
	if in.Region == "" {
		in.Region = "us-east-1"
	}
	if len(in.Region) > 32 || strings.ContainsAny(in.Region, "/ ") {
		writeErr(w, http.StatusBadRequest, "ValidationException", "invalid region")
		return
	}
	caller, secret, err := h.cfg.Lookup(r.Context(), in.AccessKeyID)
	if err != nil || subtle.ConstantTimeCompare([]byte(secret), []byte(in.SecretAccessKey)) != 1 || in.SecretAccessKey == "" {
		if err != nil && r.Context().Err() == nil && !isUnknownKey(err) {
			h.writeAPIErr(w, r, err)
			return
		}
		writeErr(w, http.StatusForbidden, "UnrecognizedClientException", "The access key id or secret access key is not valid.")
		return
	}
	caller.Region = in.Region
	caller.Service = "codedeploy"
	tok := token()
	rec := sessionRecord{Caller: caller, CSRF: token(), Expires: h.cfg.Now().Add(h.cfg.SessionTTL)}
	b, _ := json.Marshal(rec)
	if err := h.cfg.Store.Update(r.Context(), func(tx store.Tx) error {
		if err := h.pruneSessions(r.Context(), tx); err != nil {
			return err
		}
		return tx.Put(r.Context(), SessionKind, sessionKey(tok), b)
	}); err != nil {
		h.writeAPIErr(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: h.cfg.Secure || r.TLS != nil, MaxAge: int(h.cfg.SessionTTL / time.Second)})
	writeJSON(w, http.StatusOK, h.sessionView(rec))
}

// pruneSessions deletes expired sessions, a bounded batch per sign-in
// (session keys are random, so each batch is a sample of all sessions).
func (h *Handler) pruneSessions(ctx context.Context, tx store.Tx) error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	items, err := tx.Scan(ctx, SessionKind, "", hex.EncodeToString(b[:]), 64)
	if err != nil {
		return err
	}
	now := h.cfg.Now()
	for _, it := range items {
		var rec sessionRecord
		if json.Unmarshal(it.Value, &rec) == nil && now.Before(rec.Expires) {
			continue
		}
		if _, err := tx.Delete(ctx, SessionKind, it.Key); err != nil {
			return err
		}
	}
	return nil
}

// ErrUnknownKey is what Config.Lookup returns for a key that does not exist.
var ErrUnknownKey = errors.New("dashboard: unknown access key")

func isUnknownKey(err error) bool { return errors.Is(err, ErrUnknownKey) }

func (h *Handler) sessionView(rec sessionRecord) map[string]string {
	return map[string]string{"principal": rec.Caller.Principal, "accessKeyId": rec.Caller.AccessKeyID,
		"region": rec.Caller.Region, "csrf": rec.CSRF}
}

// fromSession returns the request's session, re-checking that its key
// still exists (a deleted key ends its sessions).
func (h *Handler) fromSession(r *http.Request) (sessionRecord, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || len(c.Value) > 100 {
		return sessionRecord{}, false
	}
	b, err := store.Get(r.Context(), h.cfg.Store, SessionKind, sessionKey(c.Value))
	if err != nil {
		return sessionRecord{}, false
	}
	var rec sessionRecord
	if json.Unmarshal(b, &rec) != nil || !h.cfg.Now().Before(rec.Expires) {
		return sessionRecord{}, false
	}
	cur, _, err := h.cfg.Lookup(r.Context(), rec.Caller.AccessKeyID)
	if err != nil || cur.Principal != rec.Caller.Principal || cur.Account != rec.Caller.Account {
		return sessionRecord{}, false
	}
	return rec, true
}

// caller authenticates a request by session cookie, or by SigV4 when it
// carries an Authorization header (the CLI).
func (h *Handler) caller(w http.ResponseWriter, r *http.Request) (context.Context, bool) {
	if r.Header.Get("Authorization") != "" && h.cfg.Signed != nil {
		c, err := h.cfg.Signed(r)
		if err != nil {
			h.writeAPIErr(w, r, err)
			return nil, false
		}
		return callContext(r, c), true
	}
	rec, ok := h.fromSession(r)
	if !ok {
		writeErr(w, http.StatusUnauthorized, "UnrecognizedClientException", "sign in first")
		return nil, false
	}
	return callContext(r, rec.Caller), true
}

// callContext is the context of the calls made for r as caller c: the
// audit log names the address r came from, as for a call of the API.
func callContext(r *http.Request, c awsjson.Caller) context.Context {
	return awsjson.WithRemoteAddr(awsjson.WithCaller(r.Context(), c), r.RemoteAddr)
}

func (h *Handler) checkCSRF(w http.ResponseWriter, r *http.Request) (sessionRecord, bool) {
	rec, ok := h.fromSession(r)
	if !ok {
		writeErr(w, http.StatusUnauthorized, "UnrecognizedClientException", "sign in first")
		return rec, false
	}
	got := r.Header.Get(csrfHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(rec.CSRF)) != 1 {
		writeErr(w, http.StatusForbidden, "AccessDeniedException", "missing or wrong CSRF token")
		return rec, false
	}
	return rec, true
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if _, ok := h.checkCSRF(w, r); !ok {
		return
	}
	c, _ := r.Cookie(sessionCookie)
	_ = h.cfg.Store.Update(r.Context(), func(tx store.Tx) error {
		_, err := tx.Delete(r.Context(), SessionKind, sessionKey(c.Value))
		return err
	})
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: h.cfg.Secure || r.TLS != nil, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{})
}

func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.fromSession(r)
	if !ok {
		writeErr(w, http.StatusUnauthorized, "UnrecognizedClientException", "sign in first")
		return
	}
	writeJSON(w, http.StatusOK, h.sessionView(rec))
}

// api calls one CodeDeploy operation as the signed-in key.
func (h *Handler) api(w http.ResponseWriter, r *http.Request) {
	rec, ok := h.checkCSRF(w, r)
	if !ok {
		return
	}
	op := r.PathValue("op")
	if !ops[op] {
		writeErr(w, http.StatusBadRequest, "UnknownOperationException", "the dashboard does not call "+op)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil || len(body) > maxRequestBody {
		writeErr(w, http.StatusRequestEntityTooLarge, "SerializationException", "request body too large")
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	out, err := h.cfg.Serve(callContext(r, rec.Caller), op, body)
	if err != nil {
		h.writeAPIErr(w, r, err)
		return
	}
	if out == nil {
		out = struct{}{}
	}
	writeJSON(w, http.StatusOK, out)
}

// call runs op as the caller in ctx and decodes its output into out.
func (h *Handler) call(ctx context.Context, op string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	res, err := h.cfg.Serve(ctx, op, b)
	if err != nil {
		return err
	}
	if out == nil || res == nil {
		return nil
	}
	rb, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return json.Unmarshal(rb, out)
}

// State is everything the deployment page and `cutover watch` show.
type State struct {
	Deployment json.RawMessage   `json:"deployment"`
	Targets    []json.RawMessage `json:"targets"`
	Waits      any               `json:"waits,omitempty"`
	Traffic    []TargetGroup     `json:"traffic,omitempty"`
	// ChangedAt is when this replica heard of the change this state
	// answers (Unix milliseconds; 0 for a first snapshot).
	ChangedAt float64 `json:"changedAt,omitempty"`
	// ServerTime lets clients count down without trusting their clock.
	ServerTime time.Time `json:"serverTime"`
}

// TargetGroup is one target group's observed members.
type TargetGroup struct {
	Name    string   `json:"name"`
	Members []Member `json:"members"`
	Error   string   `json:"error,omitempty"`
}

// Member is one backend as the router reports it.
type Member struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Weight   int    `json:"weight"`
	Healthy  bool   `json:"healthy"`
	State    string `json:"state"`
	InFlight int    `json:"inFlight"`
}

// state reads a deployment's State as the caller in ctx.
func (h *Handler) state(ctx context.Context, id string) (*State, error) {
	var got struct {
		DeploymentInfo json.RawMessage `json:"deploymentInfo"`
	}
	if err := h.call(ctx, "GetDeployment", map[string]string{"deploymentId": id}, &got); err != nil {
		return nil, err
	}
	st := &State{Deployment: got.DeploymentInfo, ServerTime: h.cfg.Now()}
	var ids []string
	var tok *string
	for range 100 { // 100 pages of targets at most
		var page struct {
			TargetIds []string `json:"targetIds"`
			NextToken *string  `json:"nextToken"`
		}
		if err := h.call(ctx, "ListDeploymentTargets", map[string]any{"deploymentId": id, "nextToken": tok}, &page); err != nil {
			return nil, err
		}
		ids = append(ids, page.TargetIds...)
		if tok = page.NextToken; tok == nil {
			break
		}
	}
	for i := 0; i < len(ids); i += 25 {
		var batch struct {
			DeploymentTargets []json.RawMessage `json:"deploymentTargets"`
		}
		if err := h.call(ctx, "BatchGetDeploymentTargets", map[string]any{"deploymentId": id, "targetIds": ids[i:min(i+25, len(ids))]}, &batch); err != nil {
			return nil, err
		}
		st.Targets = append(st.Targets, batch.DeploymentTargets...)
	}
	if h.cfg.Waits != nil {
		w, err := h.cfg.Waits(ctx, id)
		if err != nil {
			return nil, err
		}
		st.Waits = w
	}
	st.Traffic = h.traffic(ctx, got.DeploymentInfo)
	return st, nil
}

// traffic reports the deployment's target groups, which the caller may
// see because it may see the deployment that names them.
func (h *Handler) traffic(ctx context.Context, info json.RawMessage) []TargetGroup {
	if h.cfg.Members == nil {
		return nil
	}
	var d struct {
		LoadBalancerInfo *struct {
			TargetGroupInfoList []struct {
				Name string `json:"name"`
			} `json:"targetGroupInfoList"`
		} `json:"loadBalancerInfo"`
	}
	if json.Unmarshal(info, &d) != nil || d.LoadBalancerInfo == nil {
		return nil
	}
	var out []TargetGroup
	for _, tg := range d.LoadBalancerInfo.TargetGroupInfoList {
		g := TargetGroup{Name: tg.Name, Members: []Member{}}
		ms, err := h.cfg.Members(ctx, tg.Name)
		if err != nil {
			g.Error = err.Error()
		}
		for _, m := range ms {
			g.Members = append(g.Members, Member{ID: m.ID, Addr: m.Addr, Weight: m.Weight, Healthy: m.Healthy, State: string(m.State), InFlight: m.InFlight})
		}
		out = append(out, g)
	}
	return out
}

func (h *Handler) deployment(w http.ResponseWriter, r *http.Request) {
	ctx, ok := h.caller(w, r)
	if !ok {
		return
	}
	st, err := h.state(ctx, r.URL.Query().Get("id"))
	if err != nil {
		h.writeAPIErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// readable authenticates the request and checks that its caller may read
// the deployment ?deployment= names: whoever may read a deployment may
// read its hooks' output and its trigger deliveries.
func (h *Handler) readable(w http.ResponseWriter, r *http.Request) (context.Context, string, bool) {
	ctx, ok := h.caller(w, r)
	if !ok {
		return nil, "", false
	}
	id := r.URL.Query().Get("deployment")
	if err := h.call(ctx, "GetDeployment", map[string]string{"deploymentId": id}, nil); err != nil {
		h.writeAPIErr(w, r, err)
		return nil, "", false
	}
	return ctx, id, true
}

func (h *Handler) logs(w http.ResponseWriter, r *http.Request) {
	ctx, id, ok := h.readable(w, r)
	if !ok {
		return
	}
	logs, err := h.cfg.Logs.Read(ctx, id, r.URL.Query().Get("instance"))
	if err != nil {
		h.writeAPIErr(w, r, err)
		return
	}
	if logs == nil {
		logs = []hooklog.Log{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"logs": logs})
}

// events streams Server-Sent Events: with ?deployment=ID the deployment's
// State on every change ("state") and a "log" event when its hook output
// grows; without, a "deployments" event whenever any deployment changes
// (no ids: the client re-lists what it may see). A "failure" event ends
// a stream whose deployment can no longer be read.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	ctx, ok := h.caller(w, r)
	if !ok {
		return
	}
	caller, _ := awsjson.CallerFrom(ctx)
	release, msg := h.admit(caller)
	if release == nil {
		writeErr(w, http.StatusServiceUnavailable, "ThrottlingException", msg)
		return
	}
	defer release()
	id := r.URL.Query().Get("deployment")
	var st *State
	var err error
	if id != "" {
		st, err = h.state(ctx, id)
	} else {
		// The list stream says only "something changed"; still, only a
		// caller allowed to list applications gets it.
		err = h.call(ctx, "ListApplications", map[string]any{}, nil)
	}
	if err != nil {
		h.writeAPIErr(w, r, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, http.StatusInternalServerError, "InternalFailure", "streaming unsupported")
		return
	}
	topics := []string{h.cfg.DeploymentTopic, h.cfg.MemberTopic, hooklog.Kind}
	if h.cfg.DeliveryTopic != "" {
		topics = append(topics, h.cfg.DeliveryTopic)
	}
	if h.cfg.KeyTopic != "" {
		topics = append(topics, h.cfg.KeyTopic)
	}
	sub := h.cfg.Feed.Subscribe(topics...)
	defer sub.Close()
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(event string, v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	var lastRates []byte
	sendRates := func() bool {
		r := h.rates(st)
		b, _ := json.Marshal(r)
		if string(b) == string(lastRates) {
			return true
		}
		lastRates = b
		return send("rates", r)
	}
	if id != "" {
		if !send("state", st) || !send("log", map[string]string{}) || !send("deliveries", map[string]string{}) || !sendRates() {
			return
		}
	} else if !send("deployments", map[string]string{}) {
		return
	}
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	var refresh <-chan time.Time
	if id != "" && len(st.Traffic) > 0 {
		t := time.NewTicker(trafficRefresh)
		defer t.Stop()
		refresh = t.C
	}
	var lastTraffic []byte
	if st != nil {
		lastTraffic, _ = json.Marshal(st.Traffic)
	}
	for {
		var changed, logged, fed, delivered, ticked, rekey bool
		select {
		case <-ctx.Done():
			return
		case <-h.quit:
			return
		case <-ping.C:
			_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return
			}
			fl.Flush()
			continue
		case <-refresh:
			changed, ticked = true, true
		case <-sub.Ready():
			changes, reset := sub.Take()
			changed, logged, delivered, fed, rekey = reset, reset, reset, true, reset
			for _, c := range changes {
				switch {
				case c.Topic == h.cfg.KeyTopic:
					rekey = rekey || c.ID == "" || c.ID == caller.AccessKeyID
				case id == "" && c.Topic == h.cfg.DeploymentTopic:
					changed = changed || c.ID == "" || h.visible(ctx, c.ID)
				case id == "":
				case c.Topic == h.cfg.DeliveryTopic:
					delivered = delivered || c.ID == "" || strings.HasPrefix(c.ID, id+"/")
				case c.Topic == hooklog.Kind:
					logged = logged || c.ID == "" || hooklog.DeploymentOf(c.ID) == id
				case c.Topic == h.cfg.MemberTopic:
					changed = true
				case c.Topic == h.cfg.DeploymentTopic:
					changed = changed || c.ID == "" || c.ID == id
				}
			}
		}
		if rekey && !h.keyValid(ctx, caller) {
			send("failure", map[string]string{"message": "The access key of this stream is no longer valid."})
			return
		}
		heard := float64(time.Now().UnixMicro()) / 1000
		if id == "" {
			if changed && !send("deployments", map[string]string{}) {
				return
			}
			continue
		}
		if changed {
			nst, err := h.state(ctx, id)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				send("failure", map[string]string{"message": err.Error()})
				return
			}
			tb, _ := json.Marshal(nst.Traffic)
			same := string(nst.Deployment) == string(st.Deployment) && string(tb) == string(lastTraffic) && sameTargets(nst, st)
			st, lastTraffic = nst, tb
			if !same {
				if fed {
					st.ChangedAt = heard
				}
				if !send("state", st) {
					return
				}
			}
		}
		if logged && !send("log", map[string]string{}) {
			return
		}
		if delivered && !send("deliveries", map[string]string{}) {
			return
		}
		// The router's counters are process memory that no change feed
		// announces: the rates panel is refreshed on the traffic tick,
		// after the state re-read above re-checked that the caller may
		// still read the deployment.
		if ticked && !sendRates() {
			return
		}
	}
}

// admit counts a new event stream of caller against the limits, and
// returns the function ending it; nil and the reason when a limit is hit.
func (h *Handler) admit(c awsjson.Caller) (release func(), msg string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.byKey[c.AccessKeyID] >= maxStreamsPerKey:
		return nil, fmt.Sprintf("too many event streams for this access key (at most %d)", maxStreamsPerKey)
	case h.byAccount[c.Account] >= maxStreamsPerAccount:
		return nil, fmt.Sprintf("too many event streams for account %s (at most %d)", c.Account, maxStreamsPerAccount)
	}
	select {
	case h.sem <- struct{}{}:
	default:
		return nil, "too many event streams"
	}
	h.byKey[c.AccessKeyID]++
	h.byAccount[c.Account]++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		<-h.sem
		decrement(h.byKey, c.AccessKeyID)
		decrement(h.byAccount, c.Account)
	}, ""
}

func decrement(m map[string]int, k string) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}

// visible reports whether the caller in ctx may see the deployment; an
// error wakes the stream (it re-lists as the caller, which is checked).
func (h *Handler) visible(ctx context.Context, deploymentID string) bool {
	if h.cfg.Visible == nil {
		return true
	}
	ok, err := h.cfg.Visible(ctx, deploymentID)
	return ok || err != nil
}

// keyValid re-checks a stream's key: it still exists, for the same
// principal and account.
func (h *Handler) keyValid(ctx context.Context, c awsjson.Caller) bool {
	cur, _, err := h.cfg.Lookup(ctx, c.AccessKeyID)
	if err != nil {
		return ctx.Err() == nil && !isUnknownKey(err) // a store error is not a revocation
	}
	return cur.Principal == c.Principal && cur.Account == c.Account
}

// Rates is the traffic of one of a deployment's target groups through
// the builtin router (the rates panel).
type Rates struct {
	Name        string        `json:"name"`
	RequestRate float64       `json:"requestRate"` // per second, all backends
	ErrorRate   float64       `json:"errorRate"`
	Window      float64       `json:"window"` // seconds the rates span (0: not measured yet)
	Backends    []BackendRate `json:"backends"`
}

// BackendRate is one backend's traffic; Member names it while it is a
// member of the target group.
type BackendRate struct {
	metrics.RouterRate
	Member string `json:"member,omitempty"`
}

// rates reports the traffic of the target groups the state shows, which
// the caller may see because it may see the deployment naming them.
func (h *Handler) rates(st *State) []Rates {
	if h.cfg.Rates == nil || st == nil || len(st.Traffic) == 0 {
		return []Rates{}
	}
	names := make([]string, 0, len(st.Traffic))
	member := map[[2]string]string{}
	for _, tg := range st.Traffic {
		names = append(names, tg.Name)
		for _, m := range tg.Members {
			member[[2]string{tg.Name, m.Addr}] = m.ID
		}
	}
	byName := map[string]*Rates{}
	out := make([]Rates, len(names))
	for i, n := range names {
		out[i] = Rates{Name: n, Backends: []BackendRate{}}
		byName[n] = &out[i]
	}
	for _, r := range h.cfg.Rates(names...) {
		g := byName[r.TargetGroup]
		if g == nil {
			continue
		}
		g.Backends = append(g.Backends, BackendRate{RouterRate: r, Member: member[[2]string{r.TargetGroup, r.Backend}]})
		g.RequestRate += r.RequestRate
		g.ErrorRate += r.ErrorRate
		g.Window = max(g.Window, r.Window)
	}
	return out
}

// maxDeliveries bounds the delivery log the dashboard shows.
const maxDeliveries = 1000

// DeliveryView is one trigger delivery as the dashboard shows it (the
// message itself stays out: it is what the endpoint received).
type DeliveryView struct {
	Trigger     string    `json:"trigger"`
	Event       string    `json:"event"`
	Instance    string    `json:"instance,omitempty"`
	TopicArn    string    `json:"topicArn"`
	Subject     string    `json:"subject"`
	Status      string    `json:"status"`
	Attempts    int       `json:"attempts"`
	LastError   string    `json:"lastError,omitempty"`
	LastHTTP    int       `json:"lastHttpStatus,omitempty"`
	Created     time.Time `json:"created"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	Delivered   time.Time `json:"delivered,omitzero"`
}

// deliveries answers a deployment's trigger delivery log, to whoever may
// read the deployment.
func (h *Handler) deliveries(w http.ResponseWriter, r *http.Request) {
	ctx, id, ok := h.readable(w, r)
	if !ok {
		return
	}
	out := []DeliveryView{}
	if h.cfg.Deliveries != nil {
		ds, err := h.cfg.Deliveries(ctx, id, maxDeliveries)
		if err != nil {
			h.writeAPIErr(w, r, err)
			return
		}
		for _, d := range ds {
			if d.DeploymentID != id {
				continue // never another deployment's, whatever the key layout
			}
			out = append(out, DeliveryView{Trigger: d.Trigger, Event: d.Event, Instance: d.Instance, TopicArn: d.TopicArn, Subject: d.Subject,
				Status: d.Status, Attempts: d.Attempts, LastError: d.LastError, LastHTTP: d.LastHTTP, Created: d.Created,
				NextAttempt: d.NextAttempt, Delivered: d.Delivered})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"deliveries": out})
}

func sameTargets(a, b *State) bool {
	if len(a.Targets) != len(b.Targets) {
		return false
	}
	for i := range a.Targets {
		if string(a.Targets[i]) != string(b.Targets[i]) {
			return false
		}
	}
	return string(mustJSON(a.Waits)) == string(mustJSON(b.Waits))
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
