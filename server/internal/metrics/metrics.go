// Package metrics is the server's Prometheus metrics, served on a listener
// of their own (--metrics-listen) so that they never share a port with
// terminals or browsers.
//
// One server carries ten thousand terminals, so no metric has a label per
// terminal, site, person or card: what terminals report about themselves
// (outbox depth, clock offset) goes into histograms across terminals, and
// into gauges counting the connected terminals in a notable state (a
// non-empty outbox, a clock off by more than the trusted skew). The only
// labels are fixed words: a rejection code, a route pattern, a status code,
// an outcome. Personal data never appears (design invariant 7); a test
// scrapes after a real session and looks for card ids and credentials.
//
// Every series is per process; with several replicas, sum the counters and
// the terminal gauges across them. The reconciliation backlog is read from
// the shared database and is the same on every replica.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/syncserver"
	"github.com/liggare/liggare/syncproto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

const namespace = "liggare"

// backlogTimeout bounds the database query a scrape makes.
const backlogTimeout = 2 * time.Second

// Options configures Metrics.
type Options struct {
	// ClockThreshold is the clock offset beyond which a terminal counts in
	// liggare_terminals_clock_off (the trusted skew).
	ClockThreshold time.Duration
	// Connections, when set, reports the connected terminals.
	Connections func() int
	// Backlog, when set, reads the reconciliation backlog at each scrape.
	Backlog func(context.Context) (ledger.Backlog, error)
	Logger  *slog.Logger
}

// Metrics holds the server's metrics.
type Metrics struct {
	// Registry holds every metric of the process, the Go runtime's and
	// the process's own included.
	Registry *prometheus.Registry
	// LiveClients is the number of browsers following a live page; the web
	// layer sets it.
	LiveClients prometheus.Gauge

	opts           Options
	batches        prometheus.Counter
	tapsReceived   prometheus.Counter
	tapsAcked      prometheus.Counter
	tapsRejected   *prometheus.CounterVec
	conflicts      prometheus.Counter
	ingestLatency  prometheus.Histogram
	groupBatches   prometheus.Histogram
	groupTaps      prometheus.Histogram
	commitDuration prometheus.Histogram
	outboxDepth    prometheus.Histogram
	clockOffset    prometheus.Histogram
	nonEmpty       prometheus.Gauge
	clockOff       prometheus.Gauge
	enrollment     *prometheus.CounterVec
	httpRequests   *prometheus.CounterVec
}

// New returns Metrics registered in a new registry.
func New(opts Options) *Metrics {
	if opts.ClockThreshold <= 0 {
		opts.ClockThreshold = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{Registry: reg, opts: opts}
	m.LiveClients = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "live_clients",
		Help: "Browsers following a live attendance page."})
	m.batches = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "batches_received_total",
		Help: "Batches of taps received from terminals."})
	m.tapsReceived = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "taps_received_total",
		Help: "Taps received from terminals, repeats included."})
	m.tapsAcked = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "taps_acknowledged_total",
		Help: "Taps acknowledged as stored after their commit, repeats included."})
	m.tapsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "taps_rejected_total",
		Help: "Taps acknowledged as rejected, by rejection code."}, []string{"code"})
	m.conflicts = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "tap_conflicts_total",
		Help: "Taps whose identity the server holds with other content (quarantined; an alarm)."})
	m.ingestLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "ingest_latency_seconds",
		Help:    "Time from a batch read off the websocket to its Ack queued, after the commit.",
		Buckets: prometheus.ExponentialBucketsRange(0.001, 30, 16)})
	m.groupBatches = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "commit_group_batches",
		Help: "Batches applied per ingest transaction (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 10)})
	m.groupTaps = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "commit_group_taps",
		Help: "Taps applied per ingest transaction (group commit).", Buckets: prometheus.ExponentialBuckets(1, 4, 9)})
	m.commitDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "commit_duration_seconds",
		Help:    "Duration of an ingest transaction, retries included.",
		Buckets: prometheus.ExponentialBucketsRange(0.0005, 10, 14)})
	m.outboxDepth = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "terminal_outbox_depth",
		Help:    "Outbox depth as reported by terminals (at Hello and in each Status), across terminals.",
		Buckets: []float64{0, 1, 10, 100, 1000, 10000, 100000, 1000000}})
	m.clockOffset = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "terminal_clock_offset_abs_seconds",
		Help:    "Absolute offset between terminal and server clocks, as measured at Hello and each Status, across terminals.",
		Buckets: []float64{0.01, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400}})
	m.nonEmpty = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "terminals_outbox_nonempty",
		Help: "Connected terminals whose last report had taps waiting in the outbox."})
	m.clockOff = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "terminals_clock_off",
		Help:        "Connected terminals whose clock was last measured further off than the trusted skew.",
		ConstLabels: prometheus.Labels{"threshold_seconds": strconv.FormatFloat(opts.ClockThreshold.Seconds(), 'f', -1, 64)}})
	m.enrollment = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "enrollment_requests_total",
		Help: "Enrollment, rotation and confirmation requests, by route and outcome."}, []string{"route", "result"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
		Help: "HTTP requests on the main listener, by route pattern and status code."}, []string{"route", "code"})
	for _, c := range []prometheus.Collector{m.LiveClients, m.batches, m.tapsReceived, m.tapsAcked, m.tapsRejected,
		m.conflicts, m.ingestLatency, m.groupBatches, m.groupTaps, m.commitDuration, m.outboxDepth, m.clockOffset,
		m.nonEmpty, m.clockOff, m.enrollment, m.httpRequests} {
		f(c)
	}
	// Rejection codes exist from the start, so that rate() sees the first.
	for _, code := range []syncproto.RejectCode{syncproto.RejectInvalid, syncproto.RejectConflict} {
		m.tapsRejected.WithLabelValues(rejectLabel(code))
	}
	if opts.Connections != nil {
		f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "connected_terminals",
			Help: "Terminals connected to this server process."}, func() float64 { return float64(opts.Connections()) }))
	}
	if opts.Backlog != nil {
		f(&backlogCollector{m: m,
			rows: prometheus.NewDesc(namespace+"_reconcile_inbox_rows",
				"Rows waiting in the reconcile inbox (all replicas).", nil, nil),
			lag: prometheus.NewDesc(namespace+"_reconcile_lag_seconds",
				"Age of the oldest taps waiting for reconciliation; 0 when none wait.", nil, nil),
		})
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry, ErrorHandling: promhttp.ContinueOnError})
}

// SyncObserver returns the syncserver hooks that feed these metrics.
func (m *Metrics) SyncObserver() *syncserver.Observer {
	return &syncserver.Observer{Report: m.report, BatchReceived: m.batchReceived, Acked: m.acked}
}

func (m *Metrics) batchReceived(taps int) {
	m.batches.Inc()
	m.tapsReceived.Add(float64(taps))
}

func (m *Metrics) acked(ack *syncproto.Ack, taps int, latency time.Duration) {
	m.ingestLatency.Observe(latency.Seconds())
	m.tapsAcked.Add(float64(taps - len(ack.Rejected)))
	for _, r := range ack.Rejected {
		m.tapsRejected.WithLabelValues(rejectLabel(r.Code)).Inc()
		if r.Code == syncproto.RejectConflict {
			m.conflicts.Inc()
		}
	}
}

// rejectLabel keeps the label's values to the known codes.
func rejectLabel(c syncproto.RejectCode) string {
	switch c {
	case syncproto.RejectInvalid, syncproto.RejectConflict:
		return c.String()
	}
	return "other"
}

func (m *Metrics) report(prev, cur *syncserver.TerminalReport) {
	if cur != nil {
		m.outboxDepth.Observe(float64(cur.OutboxDepth))
		m.clockOffset.Observe(cur.ClockOffset.Abs().Seconds())
	}
	m.nonEmpty.Add(boolDelta(prev != nil && prev.OutboxDepth > 0, cur != nil && cur.OutboxDepth > 0))
	m.clockOff.Add(boolDelta(prev != nil && m.off(prev), cur != nil && m.off(cur)))
}

func (m *Metrics) off(r *syncserver.TerminalReport) bool {
	return r.ClockOffset.Abs() > m.opts.ClockThreshold
}

func boolDelta(was, is bool) float64 {
	switch {
	case was && !is:
		return -1
	case is && !was:
		return 1
	}
	return 0
}

// GroupCommitted is the ingest.CommitterOptions.OnApplied hook.
func (m *Metrics) GroupCommitted(batches, taps int, took time.Duration) {
	m.groupBatches.Observe(float64(batches))
	m.groupTaps.Observe(float64(taps))
	m.commitDuration.Observe(took.Seconds())
}

// EnrollResult is the enroll.Handler.OnResult hook.
func (m *Metrics) EnrollResult(route, result string) {
	m.enrollment.WithLabelValues(route, result).Inc()
}

// HTTPRequest counts a request on the main listener. route is the mux's
// pattern ("" when none matched), never the raw path, which could hold
// anything a client sends.
func (m *Metrics) HTTPRequest(route string, status int) {
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

// backlogCollector reads the reconciliation backlog at scrape time.
type backlogCollector struct {
	m         *Metrics
	rows, lag *prometheus.Desc
}

func (c *backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.rows
	ch <- c.lag
}

func (c *backlogCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogTimeout)
	defer cancel()
	b, err := c.m.opts.Backlog(ctx)
	if err != nil {
		c.m.opts.Logger.Warn("metrics_backlog_failed", "err", err)
		ch <- prometheus.NewInvalidMetric(c.rows, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.rows, prometheus.GaugeValue, float64(b.Rows))
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, b.OldestAge.Seconds())
}
