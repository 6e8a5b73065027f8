// Package trigger delivers deployment groups' triggerConfigurations: the
// messages CodeDeploy publishes to SNS topics, as SNS HTTP notifications
// (or Slack-compatible messages) to the webhook each topic is mapped to.
//
// Deliveries are store records written in the deployment step's
// transaction (an outbox), so a committed event is delivered even if the
// server dies right after; a worker posts them, retrying with backoff
// across restarts, and keeps the outcome as a delivery log.
package trigger

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/cutoverhq/cutover/internal/api"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/background"
	"github.com/cutoverhq/cutover/internal/deploy"
	"github.com/cutoverhq/cutover/internal/store"
)

// DeliveryKind is the store kind of delivery records (key: deployment id,
// "/", then a sequence): the change feed names it when one is written.
const DeliveryKind = kindDelivery

// Store kinds owned by this package.
const (
	kindDelivery = "tdelivery" // deploymentID/seq -> Delivery
	kindPending  = "tpending"  // deliveryKey -> next attempt (RFC 3339): deliveries not yet final
	kindOnce     = "tonce"     // deploymentID/event/instance/trigger -> deliveryKey
)

// Delivery statuses.
const (
	StatusPending   = "Pending"
	StatusDelivered = "Delivered"
	StatusFailed    = "Failed"
)

// SignatureHeader carries the HMAC-SHA256 of the body when the endpoint has
// a secret: "sha256=" and the hex digest.
const SignatureHeader = "X-Cutover-Signature"

// Delivery is one notification and what became of it.
type Delivery struct {
	Key          string    `json:"key"`
	DeploymentID string    `json:"deploymentId"`
	Trigger      string    `json:"triggerName"`
	Event        string    `json:"event"`
	Instance     string    `json:"instance,omitempty"`
	TopicArn     string    `json:"topicArn"`
	MessageID    string    `json:"messageId"`
	Subject      string    `json:"subject"`
	Message      string    `json:"message"` // the JSON CodeDeploy puts in the SNS Message
	Created      time.Time `json:"created"`
	Status       string    `json:"status"`
	Attempts     int       `json:"attempts"`
	NextAttempt  time.Time `json:"nextAttempt,omitzero"`
	ClaimedUntil time.Time `json:"claimedUntil,omitzero"`
	LastError    string    `json:"lastError,omitempty"`
	LastHTTP     int       `json:"lastHttpStatus,omitempty"`
	Delivered    time.Time `json:"delivered,omitzero"`
}

// Config configures a Notifier.
type Config struct {
	Store     store.Store
	Endpoints []Endpoint
	Logger    *slog.Logger
	Client    *http.Client // default: 10 s timeout
	Now       func() time.Time
	// MaxAttempts before a delivery is given up (Failed); default 12.
	MaxAttempts int
	// Backoff returns the wait after the n-th failed attempt; default
	// 1 s doubling up to 5 min.
	Backoff func(n int) time.Duration
}

// Notifier records and delivers trigger notifications.
type Notifier struct {
	cfg    Config
	log    *slog.Logger
	topics map[string]Endpoint
	kick   chan struct{}

	worker background.Task
}

// New returns a notifier; Start runs its delivery worker.
func New(cfg Config) *Notifier {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(n int) time.Duration {
			return min(time.Second<<min(n-1, 20), 5*time.Minute)
		}
	}
	n := &Notifier{cfg: cfg, log: cfg.Logger, topics: map[string]Endpoint{}, kick: make(chan struct{}, 1)}
	for _, e := range cfg.Endpoints {
		n.topics[e.TopicArn] = e
	}
	return n
}

// KnownTopic reports whether the topic has a configured endpoint.
func (n *Notifier) KnownTopic(arn string) bool {
	_, ok := n.topics[arn]
	return ok
}

// CheckTriggers refuses trigger configurations naming a topic this server
// has no endpoint for, as CreateDeploymentGroup does for a topic that does
// not exist.
func (n *Notifier) CheckTriggers(ts []string) error {
	for _, arn := range ts {
		if !n.KnownTopic(arn) {
			return awsjson.Errorf("InvalidTriggerConfigException", "The trigger target %s is not a topic this server delivers to: add it to the server's triggers configuration.", arn)
		}
	}
	return nil
}

// Step implements deploy.Observer: it records the deliveries the step's
// trigger events owe, in the step's transaction.
func (n *Notifier) Step(ctx context.Context, tx store.Tx, st deploy.Step) (func(), error) {
	occ := occurrences(st)
	if len(occ) == 0 {
		return nil, nil
	}
	rec := st.Record
	g, err := api.GroupByID(ctx, tx, rec.Account, rec.Region, rec.ApplicationName, rec.GroupName, rec.GroupID)
	var ae *awsjson.Error
	if errors.As(err, &ae) {
		return nil, nil // the group is gone: nobody to notify
	}
	if err != nil {
		return nil, err
	}
	if len(g.TriggerConfigurations) == 0 {
		return nil, nil
	}
	added := 0
	for _, o := range occ {
		for _, t := range g.TriggerConfigurations {
			if !slices.Contains(t.TriggerEvents, o.Event) {
				continue
			}
			if !api.TopicInAccount(deref(t.TriggerTargetArn), rec.Account) {
				// Stored before topics were checked against the account:
				// never post one account's events to another's endpoint.
				n.log.Warn("trigger names another account's topic; not delivered", "deployment", rec.ID, "trigger", deref(t.TriggerName), "topic", deref(t.TriggerTargetArn))
				continue
			}
			ok, err := n.record(ctx, tx, st, o, deref(t.TriggerName), deref(t.TriggerTargetArn))
			if err != nil {
				return nil, err
			}
			if ok {
				added++
			}
		}
	}
	if added == 0 {
		return nil, nil
	}
	return n.Kick, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (n *Notifier) record(ctx context.Context, tx store.Tx, st deploy.Step, o occurrence, trigger, topic string) (bool, error) {
	rec := st.Record
	instName := ""
	var msg any = newDeploymentMessage(rec, trigger)
	if o.Instance >= 0 {
		in := rec.Engine.Instances[o.Instance]
		instName = in.Name
		msg = newInstanceMessage(rec, in, trigger)
	}
	key := rec.ID + "/" + st.Now.UTC().Format("20060102T150405.000000000Z") + "/" + o.Event + "/" + instName + "/" + trigger
	// Once per deployment, event, instance and trigger, however often a
	// step is retried.
	if err := tx.Insert(ctx, kindOnce, rec.ID+"/"+o.Event+"/"+instName+"/"+trigger, []byte(key)); errors.Is(err, store.ErrExists) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return false, err
	}
	d := Delivery{
		Key: key, DeploymentID: rec.ID, Trigger: trigger, Event: o.Event, Instance: instName, TopicArn: topic,
		MessageID: newUUID(), Message: string(body), Created: st.Now, Status: StatusPending, NextAttempt: st.Now,
	}
	if o.Instance >= 0 {
		d.Subject = subject(rec, o.Event, rec.Engine.Instances[o.Instance])
	} else {
		d.Subject = subject(rec, o.Event, nil)
	}
	if err := putDelivery(ctx, tx, &d); err != nil {
		return false, err
	}
	return true, putPending(ctx, tx, &d)
}

// putPending indexes a delivery still owed with its next attempt, so the
// worker skips those not due without a write transaction.
func putPending(ctx context.Context, tx store.Tx, d *Delivery) error {
	return tx.Put(ctx, kindPending, d.Key, []byte(d.NextAttempt.UTC().Format(time.RFC3339Nano)))
}

func putDelivery(ctx context.Context, tx store.Tx, d *Delivery) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return tx.Put(ctx, kindDelivery, d.Key, b)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Kick wakes the worker (after a commit that added deliveries).
func (n *Notifier) Kick() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// Deliveries returns the delivery log of a deployment (all deployments if
// id is empty), oldest first, at most limit records (0: no limit).
func (n *Notifier) Deliveries(ctx context.Context, id string, limit int) ([]Delivery, error) {
	return Deliveries(ctx, n.cfg.Store, id, limit)
}

// Deliveries reads the delivery log from a store (the CLI reads it without
// a running notifier).
func Deliveries(ctx context.Context, st store.Store, id string, limit int) ([]Delivery, error) {
	prefix := ""
	if id != "" {
		prefix = id + "/"
	}
	var out []Delivery
	err := st.View(ctx, func(tx store.Tx) error {
		items, err := tx.Scan(ctx, kindDelivery, prefix, "", limit)
		if err != nil {
			return err
		}
		out = make([]Delivery, 0, len(items))
		for _, it := range items {
			var d Delivery
			if err := json.Unmarshal(it.Value, &d); err != nil {
				return fmt.Errorf("decode delivery %s: %w", it.Key, err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// Start runs the delivery worker until Close.
func (n *Notifier) Start(ctx context.Context) {
	n.worker.Start(ctx, n.run)
}

// Close stops the worker and waits for it; undelivered notifications stay
// in the store for the next start.
func (n *Notifier) Close() error {
	n.worker.Close()
	return nil
}

// idle bounds how long the worker sleeps with nothing due: deliveries
// recorded by another replica are picked up within it.
const idle = 2 * time.Second

func (n *Notifier) run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-timer.C:
		}
		next, err := n.pass(ctx)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("trigger deliveries", "err", err)
		}
		wait := idle
		if !next.IsZero() {
			wait = min(max(next.Sub(n.cfg.Now()), 0), idle)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// pass delivers everything due and returns when the next one falls due.
func (n *Notifier) pass(ctx context.Context) (time.Time, error) {
	var next time.Time
	after := ""
	for {
		var items []store.Item
		err := n.cfg.Store.View(ctx, func(tx store.Tx) error {
			var err error
			items, err = tx.Scan(ctx, kindPending, "", after, 256)
			return err
		})
		if err != nil || len(items) == 0 {
			return next, err
		}
		after = items[len(items)-1].Key
		now := n.cfg.Now()
		for _, it := range items {
			if ctx.Err() != nil {
				return next, nil
			}
			k := it.Key
			if due, err := time.Parse(time.RFC3339Nano, string(it.Value)); err == nil && due.After(now) {
				if next.IsZero() || due.Before(next) {
					next = due
				}
				continue
			}
			due, err := n.attempt(ctx, k)
			if err != nil {
				return next, err
			}
			if !due.IsZero() && (next.IsZero() || due.Before(next)) {
				next = due
			}
		}
	}
}

// attempt claims a delivery if it is due, posts it and records the
// outcome. It returns when the delivery is due next (zero: done).
func (n *Notifier) attempt(ctx context.Context, key string) (time.Time, error) {
	var d Delivery
	claimed := false
	now := n.cfg.Now()
	err := n.cfg.Store.Update(ctx, func(tx store.Tx) error {
		claimed = false
		b, err := tx.Get(ctx, kindDelivery, key)
		if errors.Is(err, store.ErrNotFound) {
			_, err = tx.Delete(ctx, kindPending, key)
			return err
		}
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &d); err != nil {
			return err
		}
		if d.Status != StatusPending {
			_, err = tx.Delete(ctx, kindPending, key)
			return err
		}
		if d.NextAttempt.After(now) || d.ClaimedUntil.After(now) {
			return nil
		}
		// Claimed for longer than one attempt can take, so that another
		// replica's worker leaves it alone meanwhile.
		d.ClaimedUntil = now.Add(n.cfg.Client.Timeout + 5*time.Second)
		claimed = true
		return putDelivery(ctx, tx, &d)
	})
	if err != nil || d.Status != StatusPending {
		return time.Time{}, err
	}
	if !claimed {
		return latest(d.NextAttempt, d.ClaimedUntil), nil
	}
	code, perr := n.post(ctx, &d)
	if ctx.Err() != nil {
		return time.Time{}, nil // shutting down: the claim lapses, the next start retries
	}
	now = n.cfg.Now()
	d.Attempts++
	d.LastHTTP = code
	d.ClaimedUntil = time.Time{}
	if perr == nil {
		d.Status, d.Delivered, d.LastError, d.NextAttempt = StatusDelivered, now, "", time.Time{}
		n.log.Info("trigger delivered", "deployment", d.DeploymentID, "trigger", d.Trigger, "event", d.Event, "instance", d.Instance, "attempts", d.Attempts)
	} else {
		d.LastError = perr.Error()
		if d.Attempts >= n.cfg.MaxAttempts {
			d.Status, d.NextAttempt = StatusFailed, time.Time{}
			n.log.Warn("trigger delivery given up", "deployment", d.DeploymentID, "trigger", d.Trigger, "event", d.Event, "attempts", d.Attempts, "err", perr)
		} else {
			d.NextAttempt = now.Add(n.cfg.Backoff(d.Attempts))
			n.log.Info("trigger delivery failed; will retry", "deployment", d.DeploymentID, "trigger", d.Trigger, "event", d.Event, "attempts", d.Attempts, "next", d.NextAttempt, "err", perr)
		}
	}
	err = n.cfg.Store.Update(ctx, func(tx store.Tx) error {
		if err := putDelivery(ctx, tx, &d); err != nil {
			return err
		}
		if d.Status != StatusPending {
			_, err := tx.Delete(ctx, kindPending, key)
			return err
		}
		return putPending(ctx, tx, &d)
	})
	return d.NextAttempt, err
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// maxResponse bounds how much of an endpoint's answer is read.
const maxResponse = 64 << 10

// post sends one delivery; it returns the HTTP status (0 if none).
func (n *Notifier) post(ctx context.Context, d *Delivery) (int, error) {
	ep, ok := n.topics[d.TopicArn]
	if !ok {
		return 0, fmt.Errorf("no endpoint is configured for topic %s", d.TopicArn)
	}
	body, contentType, err := payload(ep, d)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "Cutover-Notification-Agent")
	if ep.Format == FormatSNS {
		req.Header.Set("x-amz-sns-message-type", "Notification")
		req.Header.Set("x-amz-sns-message-id", d.MessageID)
		req.Header.Set("x-amz-sns-topic-arn", d.TopicArn)
	}
	if ep.Secret != "" {
		mac := hmac.New(sha256.New, []byte(ep.Secret))
		mac.Write(body)
		req.Header.Set(SignatureHeader, "sha256="+hex.EncodeToString(mac.Sum(nil)))
	}
	resp, err := n.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("endpoint answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// Envelope is the SNS HTTP notification a subscribed endpoint receives.
// Cutover does not sign it with an AWS certificate: the Signature fields
// are empty, and the endpoint's secret (X-Cutover-Signature) authenticates
// it instead.
type Envelope struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	TopicArn         string `json:"TopicArn"`
	Subject          string `json:"Subject"`
	Message          string `json:"Message"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
	UnsubscribeURL   string `json:"UnsubscribeURL"`
}

func payload(ep Endpoint, d *Delivery) ([]byte, string, error) {
	if ep.Format == FormatSlack {
		b, err := json.Marshal(map[string]string{"text": slackText(d)})
		return b, "application/json", err
	}
	b, err := json.Marshal(Envelope{
		Type: "Notification", MessageID: d.MessageID, TopicArn: d.TopicArn, Subject: d.Subject, Message: d.Message,
		Timestamp: d.Created.UTC().Format("2006-01-02T15:04:05.000Z"), SignatureVersion: "1",
	})
	return b, "text/plain; charset=UTF-8", err
}

func slackText(d *Delivery) string {
	var m struct {
		ApplicationName     string `json:"applicationName"`
		DeploymentGroupName string `json:"deploymentGroupName"`
		Status              string `json:"status"`
		InstanceStatus      string `json:"instanceStatus"`
		ErrorInformation    *struct {
			ErrorCode    string `json:"ErrorCode"`
			ErrorMessage string `json:"ErrorMessage"`
		} `json:"errorInformation"`
	}
	_ = json.Unmarshal([]byte(d.Message), &m)
	s := d.Subject
	if m.ApplicationName != "" {
		s += fmt.Sprintf(" (group %s, status %s)", m.DeploymentGroupName, m.Status)
	}
	if m.ErrorInformation != nil {
		s += fmt.Sprintf("\n%s: %s", m.ErrorInformation.ErrorCode, m.ErrorInformation.ErrorMessage)
	}
	return s
}

// Prune deletes the deliveries that ended (Delivered or Failed) before
// before, with their once-only markers, and reports how many went. Pending
// ones stay whatever their age: they are still owed.
func Prune(ctx context.Context, st store.Store, before time.Time) (int, error) {
	total, after := 0, ""
	for {
		var items []store.Item
		err := st.View(ctx, func(tx store.Tx) error {
			var err error
			items, err = tx.Scan(ctx, kindDelivery, "", after, 500)
			return err
		})
		if err != nil || len(items) == 0 {
			return total, err
		}
		after = items[len(items)-1].Key
		var old []Delivery
		for _, it := range items {
			var d Delivery
			if json.Unmarshal(it.Value, &d) != nil || d.Status == StatusPending || !d.Created.Before(before) {
				continue
			}
			old = append(old, d)
		}
		if len(old) > 0 {
			err = st.Update(ctx, func(tx store.Tx) error {
				for _, d := range old {
					if _, err := tx.Delete(ctx, kindDelivery, d.Key); err != nil {
						return err
					}
					if _, err := tx.Delete(ctx, kindOnce, d.DeploymentID+"/"+d.Event+"/"+d.Instance+"/"+d.Trigger); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return total, err
			}
			total += len(old)
		}
		if len(items) < 500 {
			return total, nil
		}
	}
}
