// The claim-check anchor of bench/claim-check: a minimal grpc-go server that keeps the same
// claim-check contract as the Prism proxy for the calls claimclient makes, so the bench can say how
// far a lean implementation gets on this machine and where Prism stands against it.
//
//   - Producer/Publish: a payload above -threshold is hashed (SHA-256), PutObject to
//     claims/<sha256 hex>/<message id> (signed with that hash, so the store checks the body), then
//     one XADD carries the claim (key, size, sha256, message id); a smaller one goes inline.
//   - Producer/PublishUpload: the head announces id, size and sha256; the data frames are streamed
//     into one PutObject of that length through a pipe, hashed on the way; the last frame is held
//     back until the hash matches, so a wrong payload never completes the object. Then the XADD.
//   - Consumer/Subscribe: XGROUP CREATE … MKSTREAM, then XREADGROUP BLOCK, one entry per free slot
//     of max_in_flight; a claim is fetched whole into a buffer of its size, its SHA-256 verified,
//     and the payload delivered in an Envelope.
//   - Consumer/Acknowledge: XACK, then DeleteObject of the claimed object.
//
// Left out, as it is a floor for the lean path and not a product: auth and namespaces
// (x-prism-namespace is ignored), TTLs and reference markers (one group: its ack deletes the
// object), retries, redelivery and dead letters (a negative ack only frees the slot; the entry stays
// pending), dedup, headers, content types, compression. Bench only. Messages are encoded and
// decoded by hand with protowire (fields as in proto/prism/data/v1/messaging.proto and
// envelope.proto); the codec hands over grpc-go's buffers with one copy in and none out.
//
//	claimanchor -listen 127.0.0.1:0 -redis redis://127.0.0.1:6379 \
//	  -s3-endpoint http://127.0.0.1:8333 -region us-east-1 -bucket B   (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
//
// Prints {"msg":"bench server ready","port":N,"pid":P} once serving.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"prism.bench/go-anchor/rawgrpc"
)

// codec hands a handler a received message as one []byte (the one copy out of grpc-go's pooled
// buffers) and sends what a handler returns without copying it: a []byte, or a mem.BufferSlice
// (a delivery: the encoded head, then the payload buffer as it was read from the store).
type codec struct{}

func (codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*m)}, nil
	case *mem.BufferSlice:
		return *m, nil
	}
	return nil, fmt.Errorf("claimanchor: cannot send %T", v)
}

func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func (codec) Name() string { return "proto" }

func appendVarint(b []byte, num protowire.Number, n uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), n)
}

// publishResponse is a PublishResponse (and PublishUploadResponse): message_id 1, published_at_ms 2.
func publishResponse(id string, at int64) []byte {
	return appendVarint(rawgrpc.AppendString(nil, 1, id), 2, uint64(at))
}

func invalid(format string, a ...any) error {
	return status.Errorf(codes.InvalidArgument, format, a...)
}

func unavailable(what string, err error) error {
	return status.Errorf(codes.Unavailable, "%s: %v", what, err)
}

type anchor struct {
	rdb       *redis.Client
	s3        *s3.Client
	bucket    string
	stream    string
	threshold int

	mu            sync.Mutex
	subscriptions map[string]*subscription
	nextID        atomic.Uint64
}

// subscription is one open Subscribe stream: its slots (max_in_flight) and its deliveries not yet
// acknowledged, by delivery id (the stream entry's id) → the claimed object's key ("" inline).
type subscription struct {
	group string
	slots chan struct{}

	mu      sync.Mutex
	pending map[string]string
}

// signedWith makes the SigV4 signature use `hash` as the body's SHA-256 (x-amz-content-sha256)
// instead of reading the body to compute it: the hash is already known, and a pipe cannot be read
// twice. The store refuses a body that does not match it.
func signedWith(hash string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
			return stack.Finalize.Insert(middleware.FinalizeMiddlewareFunc("claimanchor.PayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
					middleware.FinalizeOutput, middleware.Metadata, error,
				) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, hash), in)
				}), "ComputePayloadHash", middleware.Before)
		})
	}
}

// claimKey is where a payload is stored: content-addressed, then the message id.
func claimKey(sum, id string) string { return "claims/" + sum + "/" + id }

// messageID is the request's message id, or a new one.
func (a *anchor) messageID(id string) (string, error) {
	if id == "" {
		return fmt.Sprintf("anchor-%d-%d", time.Now().UnixNano(), a.nextID.Add(1)), nil
	}
	if len(id) > 256 {
		return "", invalid("message_id: at most 256 characters")
	}
	return id, nil
}

// xadd publishes one stream entry: the claim (key, size, sha256) or the payload inline.
func (a *anchor) xadd(ctx context.Context, id string, at int64, values ...any) error {
	values = append([]any{"id", id, "at", at}, values...)
	if err := a.rdb.XAdd(ctx, &redis.XAddArgs{Stream: a.stream, Values: values}).Err(); err != nil {
		return unavailable("redis XADD", err)
	}
	return nil
}

func (a *anchor) publish(ctx context.Context, req []byte) ([]byte, error) {
	var payload []byte
	var id string
	if err := rawgrpc.Fields(req, func(num protowire.Number, v []byte, _ uint64) {
		switch num {
		case 2:
			payload = v
		case 6:
			id = string(v)
		}
	}); err != nil {
		return nil, invalid("PublishRequest: %v", err)
	}
	id, err := a.messageID(id)
	if err != nil {
		return nil, err
	}
	at := time.Now().UnixMilli()
	if len(payload) <= a.threshold {
		err = a.xadd(ctx, id, at, "payload", payload)
	} else {
		sum := sha256.Sum256(payload)
		hexSum := hex.EncodeToString(sum[:])
		key := claimKey(hexSum, id)
		_, err = a.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &a.bucket, Key: &key, Body: bytes.NewReader(payload), ContentLength: aws.Int64(int64(len(payload))),
		}, signedWith(hexSum))
		if err != nil {
			return nil, unavailable("s3 PutObject", err)
		}
		err = a.xadd(ctx, id, at, "key", key, "size", len(payload), "sha256", hexSum)
	}
	if err != nil {
		return nil, err
	}
	return publishResponse(id, at), nil
}

// uploadHead is a PublishUploadHead: message_id 5, size 6, sha256 7.
type uploadHead struct {
	id, sha256 string
	size       uint64
	ok         bool
}

func (a *anchor) publishUpload(stream grpc.ServerStream) error {
	ctx := stream.Context()
	var first []byte
	if err := stream.RecvMsg(&first); err != nil {
		return err
	}
	var head uploadHead
	if err := rawgrpc.Fields(first, func(num protowire.Number, v []byte, _ uint64) {
		if num != 1 {
			return
		}
		head.ok = true
		_ = rawgrpc.Fields(v, func(num protowire.Number, v []byte, n uint64) {
			switch num {
			case 5:
				head.id = string(v)
			case 6:
				head.size = n
			case 7:
				head.sha256 = string(v)
			}
		})
	}); err != nil || !head.ok {
		return invalid("the first PublishUploadRequest must be head")
	}
	id, err := a.messageID(head.id)
	if err != nil {
		return err
	}
	// The anchor writes a claim once, under its final key: it needs the hash up front (Prism
	// without it writes a pending key and renames it).
	sum, err := hex.DecodeString(head.sha256)
	if err != nil || len(sum) != sha256.Size {
		return invalid("head.sha256: the payload's hex SHA-256 is required")
	}
	head.sha256 = hex.EncodeToString(sum)
	if head.size <= uint64(a.threshold) {
		return a.uploadInline(stream, id, head)
	}

	key := claimKey(head.sha256, id)
	body, into := io.Pipe()
	stored := make(chan error, 1)
	go func() {
		// The body is not handed over as an *io.PipeReader: smithy-go sends one of those chunked,
		// without the Content-Length it signed, which the store refuses.
		_, err := a.s3.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &a.bucket, Key: &key, Body: struct{ io.Reader }{body}, ContentLength: aws.Int64(int64(head.size)),
		}, signedWith(head.sha256), func(o *s3.Options) { o.Retryer = aws.NopRetryer{} })
		body.CloseWithError(err) // a write still waiting fails (io.ErrClosedPipe when err is nil)
		stored <- err
	}()
	// fail ends the put (its body ends in an error, so the request is cut) and waits for it.
	fail := func(err error) error {
		into.CloseWithError(err)
		<-stored
		return err
	}
	hash := sha256.New()
	var received uint64
	for {
		var frame []byte
		if err := stream.RecvMsg(&frame); err == io.EOF {
			break
		} else if err != nil {
			return fail(err)
		}
		var data []byte
		if err := rawgrpc.Fields(frame, func(num protowire.Number, v []byte, _ uint64) {
			if num == 2 {
				data = v
			}
		}); err != nil {
			return fail(invalid("PublishUploadRequest: %v", err))
		}
		received += uint64(len(data))
		if received > head.size {
			return fail(invalid("data: more than the %d bytes of head.size", head.size))
		}
		hash.Write(data)
		// The last bytes go to the store only once the hash is right, so a wrong payload never
		// completes the object.
		if received == head.size && hex.EncodeToString(hash.Sum(nil)) != head.sha256 {
			return fail(invalid("data: its SHA-256 is not head.sha256"))
		}
		if _, err := into.Write(data); err != nil { // the put ended before its body did
			return unavailable("s3 PutObject", <-stored)
		}
	}
	if received != head.size {
		return fail(invalid("data: %d bytes of the %d of head.size", received, head.size))
	}
	into.Close()
	if err := <-stored; err != nil {
		return unavailable("s3 PutObject", err)
	}
	at := time.Now().UnixMilli()
	if err := a.xadd(ctx, id, at, "key", key, "size", head.size, "sha256", head.sha256); err != nil {
		return err
	}
	reply := publishResponse(id, at)
	return stream.SendMsg(&reply)
}

// uploadInline receives an upload at or below the threshold whole, checks it, and publishes it inline.
func (a *anchor) uploadInline(stream grpc.ServerStream, id string, head uploadHead) error {
	payload := make([]byte, 0, head.size)
	for {
		var frame []byte
		if err := stream.RecvMsg(&frame); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if err := rawgrpc.Fields(frame, func(num protowire.Number, v []byte, _ uint64) {
			if num == 2 {
				payload = append(payload, v...)
			}
		}); err != nil {
			return invalid("PublishUploadRequest: %v", err)
		}
		if uint64(len(payload)) > head.size {
			return invalid("data: more than the %d bytes of head.size", head.size)
		}
	}
	sum := sha256.Sum256(payload)
	if uint64(len(payload)) != head.size || hex.EncodeToString(sum[:]) != head.sha256 {
		return invalid("data: not the head's size and SHA-256")
	}
	at := time.Now().UnixMilli()
	if err := a.xadd(stream.Context(), id, at, "payload", payload); err != nil {
		return err
	}
	reply := publishResponse(id, at)
	return stream.SendMsg(&reply)
}

func (a *anchor) subscribe(stream grpc.ServerStream) error {
	ctx := stream.Context()
	var req []byte
	if err := stream.RecvMsg(&req); err != nil {
		return err
	}
	group, maxInFlight := "anchor", uint64(16)
	if err := rawgrpc.Fields(req, func(num protowire.Number, v []byte, n uint64) {
		switch {
		case num == 2 && len(v) > 0:
			group = string(v)
		case num == 3 && n > 0:
			maxInFlight = min(n, 1024)
		}
	}); err != nil {
		return invalid("SubscribeRequest: %v", err)
	}
	err := a.rdb.XGroupCreateMkStream(ctx, a.stream, group, "$").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return unavailable("redis XGROUP CREATE", err)
	}
	subID := fmt.Sprintf("sub-%d", a.nextID.Add(1))
	sub := &subscription{group: group, slots: make(chan struct{}, maxInFlight), pending: map[string]string{}}
	a.mu.Lock()
	a.subscriptions[subID] = sub
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.subscriptions, subID)
		a.mu.Unlock()
	}()

	for {
		select {
		case sub.slots <- struct{}{}: // a free slot of max_in_flight, given back by Acknowledge
		case <-ctx.Done():
			return nil
		}
		// BLOCK for a second at most, so a cancelled stream is noticed (go-redis does not cut a
		// blocked read on cancellation).
		read, err := a.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: subID, Streams: []string{a.stream, ">"}, Count: 1, Block: time.Second,
		}).Result()
		if ctx.Err() != nil {
			return nil
		}
		if err == redis.Nil || (err == nil && (len(read) == 0 || len(read[0].Messages) == 0)) {
			// Idle: take over an entry a subscription that ended had read but not sent (its read
			// raced its cancellation), so that no message waits forever.
			read = nil
			claimed, _, err := a.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: a.stream, Group: group, Consumer: subID, MinIdle: time.Second, Start: "0-0", Count: 1,
			}).Result()
			if err == nil && len(claimed) > 0 {
				read = []redis.XStream{{Stream: a.stream, Messages: claimed}}
			}
		}
		if read == nil && (err == nil || err == redis.Nil) {
			<-sub.slots
			continue
		}
		if err != nil && err != redis.Nil {
			return unavailable("redis XREADGROUP", err)
		}
		entry := read[0].Messages[0]
		delivery, key, err := a.delivery(ctx, entry, subID)
		if err != nil {
			return err
		}
		sub.mu.Lock()
		sub.pending[entry.ID] = key
		sub.mu.Unlock()
		if err := stream.SendMsg(&delivery); err != nil {
			return err
		}
	}
}

// delivery is the SubscribeResponse of a stream entry (message 1 = Envelope, delivery_id 2,
// subscription_id 3), with a claimed payload fetched and verified, and the claim's key.
func (a *anchor) delivery(ctx context.Context, entry redis.XMessage, subID string) (mem.BufferSlice, string, error) {
	str := func(k string) string { s, _ := entry.Values[k].(string); return s }
	id, key := str("id"), str("key")
	at, _ := strconv.ParseInt(str("at"), 10, 64)
	var payload []byte
	if key == "" {
		payload = []byte(str("payload"))
	} else {
		size, err := strconv.Atoi(str("size"))
		if err != nil {
			return nil, "", status.Errorf(codes.DataLoss, "entry %s: size %q", entry.ID, str("size"))
		}
		res, err := a.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: &a.bucket, Key: &key})
		if err != nil {
			return nil, "", unavailable("s3 GetObject "+key, err)
		}
		payload = make([]byte, size)
		hash := sha256.New()
		n, err := io.ReadFull(io.TeeReader(res.Body, hash), payload)
		res.Body.Close()
		if err != nil {
			return nil, "", unavailable(fmt.Sprintf("s3 GetObject %s: %d of %d bytes", key, n, size), err)
		}
		if hex.EncodeToString(hash.Sum(nil)) != str("sha256") {
			return nil, "", status.Errorf(codes.DataLoss, "%s: the object's SHA-256 is not the claim's", key)
		}
	}
	// Envelope: message_id 1, published_at_ms 4, attempt 11, then payload 10 (sent from its own
	// buffer: grpc-go's transport frames it without a copy here).
	envelope := appendVarint(appendVarint(rawgrpc.AppendString(nil, 1, id), 4, uint64(at)), 11, 1)
	envelope = protowire.AppendTag(envelope, 10, protowire.BytesType)
	envelope = protowire.AppendVarint(envelope, uint64(len(payload)))
	head := protowire.AppendTag(nil, 1, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(envelope)+len(payload)))
	head = append(head, envelope...)
	var tail []byte
	tail = rawgrpc.AppendString(rawgrpc.AppendString(tail, 2, entry.ID), 3, subID)
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(payload), mem.SliceBuffer(tail)}, key, nil
}

func (a *anchor) acknowledge(ctx context.Context, req []byte) ([]byte, error) {
	var subID, deliveryID string
	var success bool
	if err := rawgrpc.Fields(req, func(num protowire.Number, v []byte, n uint64) {
		switch num {
		case 1:
			subID = string(v)
		case 2:
			deliveryID = string(v)
		case 3:
			success = n != 0
		}
	}); err != nil {
		return nil, invalid("AcknowledgeRequest: %v", err)
	}
	a.mu.Lock()
	sub := a.subscriptions[subID]
	a.mu.Unlock()
	if sub == nil {
		return nil, status.Errorf(codes.NotFound, "subscription %q is not open", subID)
	}
	sub.mu.Lock()
	key, ok := sub.pending[deliveryID]
	delete(sub.pending, deliveryID)
	sub.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "delivery %q is not pending", deliveryID)
	}
	defer func() { <-sub.slots }()
	if !success {
		return []byte{}, nil // no redelivery: the entry stays pending in the group
	}
	if err := a.rdb.XAck(ctx, a.stream, sub.group, deliveryID).Err(); err != nil {
		return nil, unavailable("redis XACK", err)
	}
	if key != "" {
		if _, err := a.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &a.bucket, Key: &key}); err != nil {
			return nil, unavailable("s3 DeleteObject", err)
		}
	}
	return []byte{}, nil
}

func streaming(f func(*anchor, grpc.ServerStream) error) grpc.StreamHandler {
	return func(srv any, stream grpc.ServerStream) error { return f(srv.(*anchor), stream) }
}

var producer = grpc.ServiceDesc{
	ServiceName: "prism.data.v1.Producer",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Publish", Handler: rawgrpc.Unary((*anchor).publish)}},
	Streams: []grpc.StreamDesc{
		{StreamName: "PublishUpload", Handler: streaming((*anchor).publishUpload), ClientStreams: true},
	},
}

var consumer = grpc.ServiceDesc{
	ServiceName: "prism.data.v1.Consumer",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "Acknowledge", Handler: rawgrpc.Unary((*anchor).acknowledge)}},
	Streams: []grpc.StreamDesc{
		{StreamName: "Subscribe", Handler: streaming((*anchor).subscribe), ServerStreams: true},
	},
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "gRPC listen address")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379", "Redis URL or host:port")
	s3Endpoint := flag.String("s3-endpoint", "http://127.0.0.1:8333", "S3 endpoint URL")
	region := flag.String("region", "us-east-1", "S3 region")
	bucket := flag.String("bucket", "", "S3 bucket (exists)")
	streamName := flag.String("stream", "", "Redis stream (default: a new one per start, deleted on exit)")
	threshold := flag.Int("threshold", 512*1024, "payloads above this many bytes are claim-checked")
	flag.Parse()
	if *bucket == "" {
		fail(errors.New("-bucket is required"))
	}
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		opts = &redis.Options{Addr: *redisURL}
	}
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		fail(fmt.Errorf("redis: %w", err))
	}
	ownStream := *streamName == ""
	if ownStream {
		*streamName = fmt.Sprintf("claimanchor-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	a := &anchor{
		rdb:    rdb,
		bucket: *bucket,
		stream: *streamName, threshold: *threshold,
		subscriptions: map[string]*subscription{},
		// As claimclient's: path-style, checksums only where an operation requires them.
		s3: s3.New(s3.Options{
			BaseEndpoint: aws.String(*s3Endpoint),
			Region:       *region,
			UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(
				os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		}),
	}
	err = rawgrpc.Serve(*listen, func(server *grpc.Server) {
		server.RegisterService(&producer, a)
		server.RegisterService(&consumer, a)
	}, grpc.ForceServerCodecV2(codec{}),
		grpc.MaxRecvMsgSize(512<<20), grpc.MaxSendMsgSize(512<<20),
		// As claimclient's channel: a large message does not wait for a window update every 64 KiB.
		grpc.InitialWindowSize(16<<20), grpc.InitialConnWindowSize(16<<20),
		// DataClient pings every 60 s (src/transport/limits.ts); grpc-go's default policy (one ping
		// per 5 min) would answer that with GOAWAY and end the Node client's subscription mid-run.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 30 * time.Second, PermitWithoutStream: true}))
	if ownStream {
		_ = rdb.Del(context.Background(), *streamName).Err()
	}
	_ = rdb.Close()
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "claimanchor:", err)
	os.Exit(1)
}
