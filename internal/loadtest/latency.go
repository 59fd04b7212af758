package loadtest

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

// Latency summarises the latencies of one kind of operation. Min, Max,
// Mean and Stddev are exact; P50 and P99 come from a log-linear histogram
// and are within 0.1 % of the true percentile.
type Latency struct {
	Count  uint64        `json:"count"`
	Mean   time.Duration `json:"mean_ns"`
	Stddev time.Duration `json:"stddev_ns"`
	Min    time.Duration `json:"min_ns"`
	Max    time.Duration `json:"max_ns"`
	P50    time.Duration `json:"p50_ns"`
	P99    time.Duration `json:"p99_ns"`
}

// The histogram keeps 1024 linear sub-buckets per power of two: values
// below 2048 ns are exact, larger ones are kept to 1/1024 of their size.
const (
	subBits    = 10
	subBuckets = 1 << subBits
	maxShift   = 64 - subBits - 1
	nBuckets   = (maxShift+1)*subBuckets + subBuckets
)

func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return shift*subBuckets + int(v>>shift)
}

// bucketMid is the middle of a bucket's range, the value it reports.
func bucketMid(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	low := uint64(i-shift*subBuckets) << shift
	return low + (uint64(1)<<shift)/2
}

// recorder collects latencies from many goroutines: the histogram is
// shared and updated atomically, the exact moments are summed per
// goroutine (a tally) and merged under a lock when it finishes.
type recorder struct {
	hist []atomic.Uint64

	mu         sync.Mutex
	n          uint64
	sum, sumSq float64
	minV, maxV time.Duration
	haveMin    bool
}

func newRecorder() *recorder { return &recorder{hist: make([]atomic.Uint64, nBuckets)} }

// tally is one goroutine's share of a recorder.
type tally struct {
	r          *recorder
	n          uint64
	sum, sumSq float64
	minV, maxV time.Duration
}

func (r *recorder) tally() *tally { return &tally{r: r, minV: math.MaxInt64} }

func (t *tally) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	t.r.hist[bucketOf(uint64(d))].Add(1)
	t.n++
	f := float64(d)
	t.sum += f
	t.sumSq += f * f
	t.minV = min(t.minV, d)
	t.maxV = max(t.maxV, d)
}

// done merges the tally into its recorder.
func (t *tally) done() {
	if t.n == 0 {
		return
	}
	r := t.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n += t.n
	r.sum += t.sum
	r.sumSq += t.sumSq
	if !r.haveMin || t.minV < r.minV {
		r.minV, r.haveMin = t.minV, true
	}
	r.maxV = max(r.maxV, t.maxV)
}

// summary computes the Latency of everything merged so far.
func (r *recorder) summary() Latency {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == 0 {
		return Latency{}
	}
	l := Latency{Count: r.n, Min: r.minV, Max: r.maxV}
	mean := r.sum / float64(r.n)
	l.Mean = time.Duration(mean)
	if v := r.sumSq/float64(r.n) - mean*mean; v > 0 {
		l.Stddev = time.Duration(math.Sqrt(v))
	}
	l.P50 = r.percentile(0.50)
	l.P99 = r.percentile(0.99)
	return l
}

// percentile is the value below which the fraction p of the samples lie
// (nearest rank), clamped to the exact min and max.
func (r *recorder) percentile(p float64) time.Duration {
	var total uint64
	for i := range r.hist {
		total += r.hist[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(p * float64(total)))
	rank = max(rank, 1)
	var seen uint64
	for i := range r.hist {
		seen += r.hist[i].Load()
		if seen >= rank {
			v := time.Duration(bucketMid(i))
			return min(max(v, r.minV), r.maxV)
		}
	}
	return r.maxV
}
