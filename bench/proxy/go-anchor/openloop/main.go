// The open-loop latency client of bench/proxy: one call every 1/-rate s whatever the earlier calls
// do (a goroutine per call, so a slow answer never delays the next call), for -duration s after
// -warmup s, then at most -drain s for late answers. A Go client, so a Node client's own GC does
// not become the tail it measures. Latency runs from the moment a call is issued.
//
//	openloop -target redis -redis redis://127.0.0.1:6379 -key ns:keyvalue/cache/k
//	openloop -target grpc -addr 127.0.0.1:PORT -namespace ns -body <base64 GetRequest> [-conns 1]
//
// Prints one JSON line: p50/p90/p99/p99.9/max in ms, errors, lost calls, the achieved rate and
// this process's CPU seconds.
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// rawCodec sends pre-encoded request bytes and keeps the answer's bytes unparsed.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append((*(v.(*[]byte)))[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func main() {
	target := flag.String("target", "grpc", "redis or grpc")
	rate := flag.Float64("rate", 1000, "calls per second")
	duration := flag.Float64("duration", 10, "measured seconds")
	warmup := flag.Float64("warmup", 1, "seconds of calls left out of the figures")
	drain := flag.Float64("drain", 5, "seconds to wait for late answers")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379", "Redis URL (-target redis)")
	key := flag.String("key", "", "Redis key to GET (-target redis)")
	addr := flag.String("addr", "", "host:port of the gRPC server (-target grpc)")
	path := flag.String("path", "/prism.data.v1.KeyValue/Get", "gRPC method")
	namespace := flag.String("namespace", "", "x-prism-namespace")
	body := flag.String("body", "", "base64 of the request message (no gRPC frame)")
	conns := flag.Int("conns", 1, "gRPC connections, used in turn")
	flag.Parse()

	var call func(ctx context.Context, i int) error
	var closeAll func()
	switch *target {
	case "redis":
		opts, err := redis.ParseURL(*redisURL)
		if err != nil {
			fail("%v", err)
		}
		rdb := redis.NewClient(opts)
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			fail("redis: %v", err)
		}
		call = func(ctx context.Context, _ int) error {
			err := rdb.Get(ctx, *key).Err()
			if err == redis.Nil {
				return fmt.Errorf("key %s not found", *key)
			}
			return err
		}
		closeAll = func() { _ = rdb.Close() }
	case "grpc":
		req, err := base64.StdEncoding.DecodeString(*body)
		if err != nil {
			fail("-body: %v", err)
		}
		clients := make([]*grpc.ClientConn, *conns)
		for i := range clients {
			c, err := grpc.NewClient(*addr,
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.ForceCodec(rawCodec{})))
			if err != nil {
				fail("%v", err)
			}
			c.Connect()
			clients[i] = c
		}
		md := metadata.Pairs("x-prism-namespace", *namespace)
		call = func(ctx context.Context, i int) error {
			in := req
			var out []byte
			return clients[i%len(clients)].Invoke(metadata.NewOutgoingContext(ctx, md), *path, &in, &out)
		}
		closeAll = func() {
			for _, c := range clients {
				_ = c.Close()
			}
		}
		// One call per connection first, so set-up is not in the figures.
		for i := range clients {
			if err := call(context.Background(), i); err != nil {
				fail("first call: %v", err)
			}
		}
	default:
		fail("-target must be redis or grpc")
	}

	warmupCalls := int(math.Round(*rate * *warmup))
	total := warmupCalls + int(math.Round(*rate**duration))
	interval := time.Duration(float64(time.Second) / *rate)
	latencies := make([]float64, total)
	errs := make([]bool, total)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	ctx, cancel := context.WithTimeout(context.Background(),
		time.Duration((*warmup+*duration+*drain)*float64(time.Second)))
	defer cancel()
	cpu0 := cpuSeconds()
	t0 := time.Now()
	for i := 0; i < total; i++ {
		if d := time.Until(t0.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			start := time.Now()
			err := call(ctx, i)
			latencies[i] = float64(time.Since(start).Nanoseconds()) / 1e6
			errs[i] = err != nil
			mu.Lock()
			done++
			mu.Unlock()
		}(i)
	}
	sent := time.Since(t0).Seconds()
	wg.Wait()
	cpu := cpuSeconds() - cpu0
	closeAll()

	var ok []float64
	errors := 0
	for i := warmupCalls; i < total; i++ {
		if errs[i] {
			errors++
		} else {
			ok = append(ok, latencies[i])
		}
	}
	sort.Float64s(ok)
	pct := func(p float64) float64 {
		if len(ok) == 0 {
			return math.NaN()
		}
		i := int(math.Floor(p / 100 * float64(len(ok))))
		if i >= len(ok) {
			i = len(ok) - 1
		}
		return math.Round(ok[i]*1000) / 1000
	}
	out, _ := json.Marshal(map[string]any{
		"msg": "result", "target": *target, "rate": *rate,
		"achievedRate": math.Round(float64(total)/sent*10) / 10,
		"samples":      len(ok), "errors": errors, "lost": total - done,
		"p50": pct(50), "p90": pct(90), "p99": pct(99), "p999": pct(99.9), "max": pct(100),
		"clientCpuSec": math.Round(cpu*1000) / 1000,
	})
	fmt.Println(string(out))
}
