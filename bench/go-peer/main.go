// Command go-peer runs the benchmark scenarios of `cargo xtask bench` with
// Docker's own v1 plugin client, github.com/docker/docker/pkg/plugins as
// shipped in Docker 20.10 (Debian's golang-github-docker-docker-dev), and
// prints one line of flat JSON, exactly as bench-rust does.
//
// Build (no network, no modules):
//
//	GO111MODULE=off GOPATH=<scratch>:/usr/share/gocode go build -o go-peer .
//
// Docker 20.10 keeps its directories in unexported package variables
// (socketsPath, specsPaths) and offers no exported lookup without
// activation. This driver reaches them with //go:linkname: it points the
// two variables at the benchmark tree before the first call, and calls the
// unexported (*localRegistry).Plugin for the lookup scenario. Docker's code
// is used as is; nothing of it is copied or patched. The retry budget
// (the constant defaultTimeOut, 30 s) is left alone, so "missing" and
// "getall" pay Docker's real ~15 s.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	_ "unsafe" // for go:linkname

	"github.com/docker/docker/pkg/plugins"
)

//go:linkname socketsPath github.com/docker/docker/pkg/plugins.socketsPath
var socketsPath string

//go:linkname specsPaths github.com/docker/docker/pkg/plugins.specsPaths
var specsPaths []string

// localRegistry has the layout of Docker's (an empty struct), so a pointer
// to it can be the receiver of the linked method.
type localRegistry struct{}

//go:linkname lookup github.com/docker/docker/pkg/plugins.(*localRegistry).Plugin
func lookup(l *localRegistry, name string) (*plugins.Plugin, error)

const (
	manySockets = 1000
	kind        = "VolumeDriver"
	echoMethod  = "Test.Echo"
	statsMethod = "Bench.Stats"
)

// echo is the request and reply of Test.Echo; encoded by Go it is
// {"Name":"vvv…","Opts":{"size":"10G"}} plus a newline.
type echo struct {
	Name string
	Opts map[string]string
}

const minEchoSize = len(`{"Name":"","Opts":{"size":"10G"}}`) + 1

func echoOfSize(size int) *echo {
	n := size - minEchoSize
	if n < 0 {
		n = 0
	}
	return &echo{Name: strings.Repeat("v", n), Opts: map[string]string{"size": "10G"}}
}

type options struct {
	tree, transport, socket           string
	size, conc, iters, count, callers int
	secs, idleSecs                    float64
}

// report is one line of flat JSON, in insertion order.
type report struct{ parts []string }

func (r *report) num(key string, v float64) *report {
	r.parts = append(r.parts, strconv.Quote(key)+":"+strconv.FormatFloat(v, 'f', -1, 64))
	return r
}

func (r *report) String() string { return "{" + strings.Join(r.parts, ",") + "}" }

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: go-peer <scenario> --tree DIR [--key value …]"))
	}
	scenario := os.Args[1]
	var o options
	fs := flag.NewFlagSet("go-peer", flag.ExitOnError)
	fs.StringVar(&o.tree, "tree", "", "benchmark tree")
	fs.StringVar(&o.transport, "transport", "unix", "unix or tcp")
	fs.IntVar(&o.size, "size", 50, "echo body size")
	fs.IntVar(&o.conc, "conc", 16, "concurrent callers")
	fs.IntVar(&o.iters, "iters", 1, "iterations")
	fs.IntVar(&o.count, "count", 100, "fresh names for first-get")
	fs.IntVar(&o.callers, "callers", 1000, "concurrent gets for herd")
	fs.Float64Var(&o.secs, "secs", 1, "seconds to measure")
	fs.Float64Var(&o.idleSecs, "idle-secs", 0, "seconds to idle")
	fs.StringVar(&o.socket, "socket", "", "unix socket for plugin-serve")
	fs.String("runtime", "", "ignored (Rust only)")
	if err := fs.Parse(os.Args[2:]); err != nil {
		fail(err)
	}
	if o.tree == "" {
		fail(fmt.Errorf("--tree is required"))
	}
	if scenario == "plugin-serve" {
		if err := pluginServe(&o); err != nil {
			fail(err)
		}
		return
	}
	var r *report
	var err error
	switch scenario {
	case "seq":
		r, err = seq(&o)
	case "conc":
		r, err = conc(&o)
	case "missing":
		r, err = missing(&o)
	case "getall":
		r, err = getall(&o)
	case "scan":
		r, err = scan(&o)
	case "first-get":
		r, err = firstGet(&o)
	case "herd":
		r, err = herd(&o)
	case "idle":
		r, err = idle(&o)
	default:
		err = fmt.Errorf("unknown scenario %q", scenario)
	}
	if err != nil {
		fail(err)
	}
	fmt.Println(r)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go-peer:", err)
	os.Exit(1)
}

// useTree points Docker's package at <tree>/<part>.
func useTree(o *options, part string) {
	socketsPath = filepath.Join(o.tree, part, "sockets")
	specsPaths = []string{filepath.Join(o.tree, part, "specs")}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func rate(calls int64, wall, cpu time.Duration) *report {
	c := float64(calls)
	return new(report).
		num("calls", c).
		num("secs", wall.Seconds()).
		num("calls_per_sec", c/wall.Seconds()).
		num("cpu_us_per_call", float64(cpu.Microseconds())/c)
}

func quantile(v []float64, q float64) float64 {
	if len(v) == 0 {
		return -1
	}
	sort.Float64s(v)
	i := int(float64(len(v)-1)*q + 0.5)
	return v[i]
}

func echoClient(o *options) (*plugins.Client, error) {
	useTree(o, "main")
	name := "bench"
	switch o.transport {
	case "unix":
	case "tcp":
		name = "bench-tcp"
	default:
		return nil, fmt.Errorf("--transport unix|tcp, not %q", o.transport)
	}
	pl, err := plugins.Get(name, kind)
	if err != nil {
		return nil, err
	}
	return pl.Client(), nil
}

func call(c *plugins.Client, req *echo) error {
	var reply echo
	if err := c.Call(echoMethod, req, &reply); err != nil {
		return err
	}
	if len(reply.Name) != len(req.Name) {
		return fmt.Errorf("echo reply differs from the request")
	}
	return nil
}

func seq(o *options) (*report, error) {
	c, err := echoClient(o)
	if err != nil {
		return nil, err
	}
	req := echoOfSize(o.size)
	secs := time.Duration(o.secs * float64(time.Second))
	for warm := time.Now(); time.Since(warm) < secs/5; {
		if err := call(c, req); err != nil {
			return nil, err
		}
	}
	start, cpu := time.Now(), cpuTime()
	var calls int64
	for {
		for i := 0; i < 16; i++ {
			if err := call(c, req); err != nil {
				return nil, err
			}
		}
		calls += 16
		if time.Since(start) >= secs {
			break
		}
	}
	return rate(calls, time.Since(start), cpuTime()-cpu), nil
}

func conc(o *options) (*report, error) {
	c, err := echoClient(o)
	if err != nil {
		return nil, err
	}
	req := echoOfSize(o.size)
	secs := time.Duration(o.secs * float64(time.Second))
	var stop, counting atomic.Bool
	var calls atomic.Int64
	errs := make(chan error, o.conc)
	var wg sync.WaitGroup
	for i := 0; i < o.conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := call(c, req); err != nil {
					errs <- err
					return
				}
				if counting.Load() {
					calls.Add(1)
				}
			}
		}()
	}
	time.Sleep(secs / 5)
	start, cpu := time.Now(), cpuTime()
	counting.Store(true)
	time.Sleep(secs)
	counting.Store(false)
	wall, cpuUsed := time.Since(start), cpuTime()-cpu
	stop.Store(true)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return rate(calls.Load(), wall, cpuUsed), nil
}

func missing(o *options) (*report, error) {
	useTree(o, "many")
	start := time.Now()
	for i := 0; i < o.iters; i++ {
		_, err := plugins.Get(fmt.Sprintf("missing%d", i), kind)
		if err == nil {
			return nil, fmt.Errorf("a missing name was found")
		}
	}
	per := float64(time.Since(start).Microseconds()) / float64(o.iters)
	return new(report).num("us_per_get", per), nil
}

func getall(o *options) (*report, error) {
	useTree(o, "list")
	var times []float64
	found := 0
	// Docker's storage is process-wide: only the first listing is cold.
	for i := 0; i < o.iters; i++ {
		start := time.Now()
		pls, err := plugins.GetAll(kind)
		if err != nil {
			return nil, err
		}
		times = append(times, float64(time.Since(start).Microseconds())/1e3)
		found = len(pls)
	}
	return new(report).num("ms", quantile(times, 0.5)).num("plugins", float64(found)), nil
}

func scan(o *options) (*report, error) {
	useTree(o, "many")
	warm, err := plugins.Scan()
	if err != nil {
		return nil, err
	}
	var scans, lookups []float64
	for i := 0; i < o.iters; i++ {
		start := time.Now()
		names, err := plugins.Scan()
		if err != nil {
			return nil, err
		}
		scans = append(scans, float64(time.Since(start).Nanoseconds())/1e6)
		if len(names) != len(warm) {
			return nil, fmt.Errorf("scan results changed")
		}
	}
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("s%05d", i*10)
	}
	l := &localRegistry{}
	for i := 0; i < o.iters; i++ {
		start := time.Now()
		for _, n := range names {
			if _, err := lookup(l, n); err != nil {
				return nil, err
			}
		}
		lookups = append(lookups, float64(time.Since(start).Nanoseconds())/1e6)
	}
	return new(report).
		num("scan_ms", quantile(scans, 0.5)).
		num("lookups_ms", quantile(lookups, 0.5)).
		num("names", float64(len(warm))), nil
}

func manyName(i int) string { return fmt.Sprintf("p%04d", i) }

func firstGet(o *options) (*report, error) {
	useTree(o, "many")
	if o.count >= manySockets {
		return nil, fmt.Errorf("--count must leave one socket for the warm-up")
	}
	if _, err := plugins.Get(manyName(manySockets-1), kind); err != nil {
		return nil, err
	}
	var times []float64
	for i := 0; i < o.count; i++ {
		start := time.Now()
		if _, err := plugins.Get(manyName(i), kind); err != nil {
			return nil, err
		}
		times = append(times, float64(time.Since(start).Nanoseconds())/1e3)
	}
	p50 := quantile(times, 0.5)
	return new(report).num("p50_us", p50).num("p90_us", quantile(times, 0.9)), nil
}

func activations(o *options) (int64, error) {
	c, err := plugins.NewClient("unix://"+filepath.Join(o.tree, "main", "sockets", "bench.sock"), nil)
	if err != nil {
		return 0, err
	}
	var stats struct{ Activates int64 }
	if err := c.Call(statsMethod, nil, &stats); err != nil {
		return 0, err
	}
	return stats.Activates, nil
}

func herd(o *options) (*report, error) {
	useTree(o, "many")
	before, err := activations(o)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	errs := make(chan error, o.callers)
	var wg sync.WaitGroup
	for i := 0; i < o.callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := plugins.Get(manyName(0), kind); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	ms := float64(time.Since(start).Microseconds()) / 1e3
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	after, err := activations(o)
	if err != nil {
		return nil, err
	}
	return new(report).num("handshakes", float64(after-before)).num("ms", ms), nil
}

func rssKiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			v := strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
			n, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 64)
			return n
		}
	}
	return 0
}

func openSockets() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range entries {
		if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(t, "socket:") {
			n++
		}
	}
	return n
}

// settle gives garbage back to the system so RSS counts what is live
// (bench-rust calls malloc_trim for the same reason).
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
}

func idle(o *options) (*report, error) {
	useTree(o, "many")
	settle()
	rssBase, socketsBase := rssKiB(), openSockets()
	pls := make([]*plugins.Plugin, 0, manySockets)
	for i := 0; i < manySockets; i++ {
		pl, err := plugins.Get(manyName(i), kind)
		if err != nil {
			return nil, err
		}
		pls = append(pls, pl)
	}
	settle()
	rss := rssKiB()
	r := new(report).
		num("rss_base_kib", rssBase).
		num("rss_kib", rss).
		num("kib_per_plugin", (rss-rssBase)/manySockets).
		num("sockets_open", float64(openSockets()-socketsBase))
	if o.idleSecs > 0 {
		time.Sleep(time.Duration(o.idleSecs * float64(time.Second)))
		settle()
		r.num("sockets_after_idle", float64(openSockets()-socketsBase)).
			num("rss_after_idle_kib", rssKiB())
	}
	runtime.KeepAlive(pls)
	return r, nil
}
