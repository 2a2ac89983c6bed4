// The Go anchor of bench/proxy/stream.js for Kafka: a minimal grpc-go → franz-go proxy serving
// prism.data.v1.Producer/PublishStream and Consumer/Consume, so the stream cell can be set beside
// what a small Go proxy reaches with the same client, broker and machine. Bench only: no auth, no
// limits, no dead letters, no redelivery, no dedup; wire format decoded by hand with protowire,
// fields as in proto/prism/data/v1/messaging.proto and envelope.proto.
//
// What it keeps of the driver's contract, so that the work compares: topics are created with 3
// partitions and messages go to the first; the producer is idempotent with acks=all and one
// request in flight, of at most -batch records gathered for at most -linger (the producer's
// batch_size and batch_interval in the stream cell); a message is acknowledged to the client once the broker stored it; records
// carry the envelope headers the Kafka driver writes; a consumer group starts at the earliest
// offset, commits only the offsets below the lowest unacknowledged delivery (coalesced: one commit
// in flight) and keeps at most max_in_flight deliveries unacknowledged.
//
//	kafkarelay -listen 127.0.0.1:0 -brokers 127.0.0.1:9092 [-batch 32] [-linger 2ms]
//
// Prints {"msg":"bench server ready","port":N,"pid":P} once serving.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"
	"prism.bench/go-anchor/rawgrpc"
)

const window = 1024

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

type relay struct {
	brokers  []string
	producer *kgo.Client
	admin    *kadm.Client
	topics   sync.Map // Kafka topic -> struct{}: created
	sends    chan send
	batch    int
	linger   time.Duration
}

// send is one record waiting for its produce request, and what to call with the outcome.
type send struct {
	record *kgo.Record
	done   func(error)
}

// produceBatches sends the records as the producer runner does with batch_size and
// batch_interval: up to `batch` records per produce request, waiting at most `linger` for a
// batch to fill, one request at a time (franz-go would otherwise put everything buffered while a
// request is in flight into the next one, batches far larger than the other cells').
func (r *relay) produceBatches() {
	for first := range r.sends {
		batch := []send{first}
		timer := time.NewTimer(r.linger)
	fill:
		for len(batch) < r.batch {
			select {
			case next := <-r.sends:
				batch = append(batch, next)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		records := make([]*kgo.Record, len(batch))
		for i, s := range batch {
			records[i] = s.record
		}
		results := r.producer.ProduceSync(context.Background(), records...)
		for i, s := range batch {
			s.done(results[i].Err)
		}
	}
}

func (r *relay) ensureTopic(ctx context.Context, topic string) {
	if _, ok := r.topics.Load(topic); ok {
		return
	}
	// An error is most likely "already exists"; a real one shows in the produce or the fetch.
	_, _ = r.admin.CreateTopics(ctx, 3, 1, nil, topic)
	r.topics.Store(topic, struct{}{})
}

func namespaceOf(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-prism-namespace"); len(v) > 0 {
		return v[0]
	}
	return ""
}

func kafkaTopic(namespace, topic string) string { return "relay." + namespace + "." + topic }

// record is the Kafka record of a message, as the Kafka driver writes it, with its message id
// (given, or a new one) and publish time.
func (r *relay) record(ctx context.Context, namespace, topic, messageID string, payload []byte) (*kgo.Record, string, int64) {
	if messageID == "" {
		messageID = uuid()
	}
	t := kafkaTopic(namespace, topic)
	r.ensureTopic(ctx, t)
	now := time.Now().UnixMilli()
	return &kgo.Record{
		Topic:     t,
		Partition: 0,
		Value:     payload,
		Headers: []kgo.RecordHeader{
			{Key: "prism-message-id", Value: []byte(messageID)},
			{Key: "prism-namespace", Value: []byte(namespace)},
			{Key: "prism-published-at-ms", Value: []byte(strconv.FormatInt(now, 10))},
			{Key: "prism-session-subject", Value: []byte("anonymous")},
		},
	}, messageID, now
}

// publishResponse encodes a PublishResponse {message_id 1, published_at_ms 2}.
func publishResponse(messageID string, now int64) []byte {
	var res []byte
	res = protowire.AppendTag(res, 1, protowire.BytesType)
	res = protowire.AppendString(res, messageID)
	res = protowire.AppendTag(res, 2, protowire.VarintType)
	return protowire.AppendVarint(res, uint64(now))
}

// parsePublish reads a PublishRequest's topic (1), payload (2) and message id (6).
func parsePublish(b []byte) (topic string, payload []byte, messageID string) {
	_ = rawgrpc.Fields(b, func(num protowire.Number, b []byte, _ uint64) {
		switch num {
		case 1:
			topic = string(b)
		case 2:
			payload = b
		case 6:
			messageID = string(b)
		}
	})
	return
}

// publish is the unary Publish: answered once the broker stored the message.
func (r *relay) publish(ctx context.Context, req []byte) ([]byte, error) {
	topic, payload, messageID := parsePublish(req)
	record, messageID, now := r.record(ctx, namespaceOf(ctx), topic, messageID, payload)
	if err := r.producer.ProduceSync(ctx, record).FirstErr(); err != nil {
		return nil, err
	}
	return publishResponse(messageID, now), nil
}

// publishStream answers window first, then an ack per message once the broker stored it, several
// per response when they are ready together.
func (r *relay) publishStream(stream grpc.ServerStream) error {
	ctx := stream.Context()
	namespace := namespaceOf(ctx)
	first := protowire.AppendTag(nil, 1, protowire.VarintType)
	first = protowire.AppendVarint(first, window)
	if err := stream.SendMsg(&first); err != nil {
		return err
	}
	acks := make(chan []byte, window)
	var outstanding sync.WaitGroup
	sendErr := make(chan error, 1)
	go func() {
		for ack := range acks {
			out := append([]byte(nil), ack...)
		more:
			for {
				select {
				case next, ok := <-acks:
					if !ok {
						break more
					}
					out = append(out, next...)
				default:
					break more
				}
			}
			if err := stream.SendMsg(&out); err != nil {
				sendErr <- err
				for range acks {
				}
				return
			}
		}
		sendErr <- nil
	}()
	var err error
	for err == nil {
		var req []byte
		if err = stream.RecvMsg(&req); err != nil {
			break
		}
		err = rawgrpc.Fields(req, func(num protowire.Number, m []byte, _ uint64) {
			if num != 1 {
				return
			}
			var id uint64
			var topic, messageID string
			var payload []byte
			_ = rawgrpc.Fields(m, func(num protowire.Number, b []byte, v uint64) {
				switch num {
				case 1:
					id = v
				case 2:
					topic, payload, messageID = parsePublish(b)
				}
			})
			record, messageID, now := r.record(ctx, namespace, topic, messageID, payload)
			outstanding.Add(1)
			r.sends <- send{record: record, done: func(perr error) {
				defer outstanding.Done()
				// PublishStreamResponse.acks (2): PublishStreamAck {id 1, result 2 | error 3}.
				var ack []byte
				ack = protowire.AppendTag(ack, 1, protowire.VarintType)
				ack = protowire.AppendVarint(ack, id)
				if perr == nil {
					ack = protowire.AppendTag(ack, 2, protowire.BytesType)
					ack = protowire.AppendBytes(ack, publishResponse(messageID, now))
				} else {
					var e []byte
					e = protowire.AppendTag(e, 1, protowire.VarintType)
					e = protowire.AppendVarint(e, 14)
					e = protowire.AppendTag(e, 3, protowire.BytesType)
					e = protowire.AppendString(e, perr.Error())
					ack = protowire.AppendTag(ack, 3, protowire.BytesType)
					ack = protowire.AppendBytes(ack, e)
				}
				out := protowire.AppendTag(nil, 2, protowire.BytesType)
				acks <- protowire.AppendBytes(out, ack)
			}}
		})
	}
	outstanding.Wait()
	close(acks)
	if serr := <-sendErr; serr != nil {
		return serr
	}
	if !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// delivery is one record handed to the client, until it is acknowledged.
type delivery struct {
	record *kgo.Record
	acked  bool
}

// consume opens a group consumer on `open`, sends what each fetch returns in one response, and
// commits the acknowledged prefix of each partition.
func (r *relay) consume(stream grpc.ServerStream) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	namespace := namespaceOf(ctx)
	var open []byte
	if err := stream.RecvMsg(&open); err != nil {
		return err
	}
	var topic, group string
	maxInFlight := uint64(1024)
	_ = rawgrpc.Fields(open, func(num protowire.Number, b []byte, _ uint64) {
		if num != 1 {
			return
		}
		_ = rawgrpc.Fields(b, func(num protowire.Number, b []byte, v uint64) {
			switch num {
			case 1:
				topic = string(b)
			case 2:
				group = string(b)
			case 3:
				if v > 0 {
					maxInFlight = v
				}
			}
		})
	})
	t := kafkaTopic(namespace, topic)
	r.ensureTopic(ctx, t)
	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(r.brokers...),
		kgo.ConsumerGroup("relay."+namespace+"."+group),
		kgo.ConsumeTopics(t),
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return err
	}
	defer consumer.Close()

	var mu sync.Mutex
	room := sync.NewCond(&mu)
	pending := map[string]*delivery{}
	queues := map[int32][]*delivery{} // per partition, in delivery order
	commitNow := make(chan struct{}, 1)
	closed := false

	// Acks: mark, pop each partition's acknowledged prefix, wake the committer and the fetcher.
	go func() {
		defer func() {
			mu.Lock()
			closed = true
			room.Broadcast()
			mu.Unlock()
			cancel()
		}()
		for {
			var req []byte
			if err := stream.RecvMsg(&req); err != nil {
				return
			}
			mu.Lock()
			_ = rawgrpc.Fields(req, func(num protowire.Number, b []byte, _ uint64) {
				if num != 2 {
					return
				}
				_ = rawgrpc.Fields(b, func(num protowire.Number, id []byte, _ uint64) {
					if num != 1 {
						return
					}
					if d := pending[string(id)]; d != nil {
						d.acked = true
						delete(pending, string(id))
					}
				})
			})
			room.Broadcast()
			mu.Unlock()
			select {
			case commitNow <- struct{}{}:
			default:
			}
		}
	}()

	// Commits: one in flight, of the highest record of each partition's acknowledged prefix.
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-commitNow:
			}
			var done []*kgo.Record
			mu.Lock()
			for p, q := range queues {
				i := 0
				for i < len(q) && q[i].acked {
					i++
				}
				if i > 0 {
					done = append(done, q[i-1].record)
					queues[p] = q[i:]
				}
			}
			mu.Unlock()
			if len(done) > 0 {
				_ = consumer.CommitRecords(ctx, done...)
			}
		}
	}()

	next := 0
	for {
		fetches := consumer.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		var out []byte
		mu.Lock()
		fetches.EachRecord(func(rec *kgo.Record) {
			for !closed && uint64(len(pending)) >= maxInFlight {
				if len(out) > 0 {
					mu.Unlock()
					_ = stream.SendMsg(&out)
					out = nil
					mu.Lock()
					continue
				}
				room.Wait()
			}
			next++
			id := strconv.Itoa(next)
			d := &delivery{record: rec}
			pending[id] = d
			queues[rec.Partition] = append(queues[rec.Partition], d)
			out = protowire.AppendTag(out, 1, protowire.BytesType)
			out = protowire.AppendBytes(out, deliveryOf(rec, topic, id))
		})
		stop := closed
		mu.Unlock()
		if stop {
			return nil
		}
		if len(out) > 0 {
			if err := stream.SendMsg(&out); err != nil {
				return err
			}
		}
	}
}

// deliveryOf encodes a ConsumeDelivery {message 1: Envelope, delivery_id 2} of the record.
func deliveryOf(rec *kgo.Record, topic, id string) []byte {
	var env []byte
	var session []byte
	for _, h := range rec.Headers {
		switch h.Key {
		case "prism-message-id":
			env = protowire.AppendTag(env, 1, protowire.BytesType)
			env = protowire.AppendBytes(env, h.Value)
		case "prism-namespace":
			env = protowire.AppendTag(env, 3, protowire.BytesType)
			env = protowire.AppendBytes(env, h.Value)
		case "prism-published-at-ms":
			ms, _ := strconv.ParseInt(string(h.Value), 10, 64)
			env = protowire.AppendTag(env, 4, protowire.VarintType)
			env = protowire.AppendVarint(env, uint64(ms))
		case "prism-session-subject":
			if len(h.Value) > 0 {
				session = protowire.AppendTag(session, 1, protowire.BytesType)
				session = protowire.AppendBytes(session, h.Value)
			}
		}
	}
	env = protowire.AppendTag(env, 2, protowire.BytesType)
	env = protowire.AppendString(env, topic)
	if len(session) > 0 {
		env = protowire.AppendTag(env, 7, protowire.BytesType)
		env = protowire.AppendBytes(env, session)
	}
	env = protowire.AppendTag(env, 10, protowire.BytesType)
	env = protowire.AppendBytes(env, rec.Value)
	env = protowire.AppendTag(env, 11, protowire.VarintType)
	env = protowire.AppendVarint(env, 1)
	var d []byte
	d = protowire.AppendTag(d, 1, protowire.BytesType)
	d = protowire.AppendBytes(d, env)
	d = protowire.AppendTag(d, 2, protowire.BytesType)
	return protowire.AppendString(d, id)
}

func streamHandler(f func(*relay, grpc.ServerStream) error) grpc.StreamHandler {
	return func(srv any, stream grpc.ServerStream) error { return f(srv.(*relay), stream) }
}

var producerService = grpc.ServiceDesc{
	ServiceName: "prism.data.v1.Producer",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Publish",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			out, err := srv.(*relay).publish(ctx, in)
			if err != nil {
				return nil, err
			}
			return &out, nil
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName: "PublishStream", Handler: streamHandler((*relay).publishStream),
		ServerStreams: true, ClientStreams: true,
	}},
}

var consumerService = grpc.ServiceDesc{
	ServiceName: "prism.data.v1.Consumer",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName: "Consume", Handler: streamHandler((*relay).consume),
		ServerStreams: true, ClientStreams: true,
	}},
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "gRPC listen address")
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	batch := flag.Int("batch", 32, "most records per produce request (the producer's batch_size)")
	linger := flag.Duration("linger", 2*time.Millisecond, "longest wait for a batch to fill (batch_interval)")
	flag.Parse()
	seeds := strings.Split(*brokers, ",")
	producer, err := kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxProduceRequestsInflightPerBroker(1),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	pingCtx, cancelPing := context.WithTimeout(context.Background(), 10*time.Second)
	if err := producer.Ping(pingCtx); err != nil {
		fmt.Fprintln(os.Stderr, "kafka:", err)
		os.Exit(1)
	}
	cancelPing()
	r := &relay{
		brokers: seeds, producer: producer, admin: kadm.NewClient(producer),
		sends: make(chan send, window), batch: *batch, linger: *linger,
	}
	go r.produceBatches()
	err = rawgrpc.Serve(*listen, func(server *grpc.Server) {
		server.RegisterService(&producerService, r)
		server.RegisterService(&consumerService, r)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	producer.Close()
}
