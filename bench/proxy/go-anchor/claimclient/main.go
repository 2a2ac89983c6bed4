// The Go load generator of bench/claim-check: both contenders of a claim-check round driven from
// one Go process, so that the client's own CPU (a Node client spends about as much as the proxy on
// a 100 MiB transfer) weighs little on the 2 cores the bench measures.
//
//   - direct: PutObject then GetObject (read into a buffer of its length) of the payload with the
//     AWS SDK for Go v2, then DeleteObject, untimed.
//   - claim: the payload published through the proxy, by Producer/PublishUpload (head with size and
//     SHA-256, then 256 KiB data frames, as DataClient.publishUpload) or by one unary Publish, and
//     timed until its delivery arrived on this process's Subscribe stream (then acknowledged).
//
// Messages are encoded and decoded by hand with protowire (fields as in
// proto/prism/data/v1/messaging.proto and envelope.proto), as the anchor does.
//
//	claimclient -endpoint 127.0.0.1:P -namespace NS -group G -proxy-pid PID \
//	  -s3-endpoint http://127.0.0.1:8333 -region us-east-1 -bucket B   (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
//
// Reads commands from stdin, one per line, and answers each with one JSON line:
//
//	payload <bytes>         a new random payload               {"ok":true}
//	direct [endpoint]       put + get of it (at another S3      {"ms":..,"firstMs":..,"secondMs":..,"clientCpuMs":..}
//	                        endpoint, e.g. a byte relay's)
//	claim upload|publish    publish + delivery of it            the same, and proxy CPU ms: cpuMs, publishCpuMs, deliveryCpuMs
//
// Prints {"msg":"claim client ready"} once subscribed; an error ends the process with a message.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"

	"prism.bench/go-anchor/rawgrpc"
)

const frameBytes = 256 * 1024

// rawCodec sends the bytes it is given; a received message is handed to a decoder.
type rawCodec struct{}

type decoder interface{ decode([]byte) error }

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	if d, ok := v.(decoder); ok {
		return d.decode(data)
	}
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// delivery is a SubscribeResponse: the envelope's message id and payload, the ids to ack with.
type delivery struct {
	messageID, deliveryID, subscriptionID string
	payload                               []byte
}

func (d *delivery) decode(b []byte) error {
	return fields(b, func(num protowire.Number, v []byte) error {
		switch num {
		case 1: // message: Envelope
			return fields(v, func(num protowire.Number, v []byte) error {
				switch num {
				case 1:
					d.messageID = string(v)
				case 10: // the payload, kept as a client would (the received buffer is grpc-go's)
					d.payload = append([]byte(nil), v...)
				}
				return nil
			})
		case 2:
			d.deliveryID = string(v)
		case 3:
			d.subscriptionID = string(v)
		}
		return nil
	})
}

// fields calls `each` with every length-delimited field of b; other wire types are skipped.
func fields(b []byte, each func(protowire.Number, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return protowire.ParseError(m)
			}
			if err := each(num, v); err != nil {
				return err
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}

type client struct {
	conn       *grpc.ClientConn
	ctx        context.Context
	s3         *s3.Client
	s3At       func(endpoint string) *s3.Client
	relayed    map[string]*s3.Client
	bucket     string
	proxyPid   int
	payload    []byte
	deliveries chan *delivery
}

func main() {
	endpoint := flag.String("endpoint", "", "proxy host:port")
	namespace := flag.String("namespace", "", "namespace")
	group := flag.String("group", "", "consumer group")
	proxyPid := flag.Int("proxy-pid", 0, "the proxy's pid, for its CPU time")
	s3Endpoint := flag.String("s3-endpoint", "", "S3 endpoint URL")
	region := flag.String("region", "us-east-1", "S3 region")
	bucket := flag.String("bucket", "", "S3 bucket")
	flag.Parse()

	conn, err := grpc.NewClient(*endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(512<<20), grpc.MaxCallSendMsgSize(512<<20)),
		// As DataClient's consumer channel: a delivery does not wait for a window update every 64 KiB.
		grpc.WithInitialWindowSize(16<<20), grpc.WithInitialConnWindowSize(16<<20))
	if err != nil {
		fail(err)
	}
	s3At := func(endpoint string) *s3.Client {
		return s3.New(s3.Options{
			BaseEndpoint: aws.String(endpoint),
			Region:       *region,
			UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(
				os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		})
	}
	c := &client{
		conn:       conn,
		ctx:        metadata.AppendToOutgoingContext(context.Background(), "x-prism-namespace", *namespace),
		bucket:     *bucket,
		proxyPid:   *proxyPid,
		deliveries: make(chan *delivery, 4),
		s3:         s3At(*s3Endpoint),
		s3At:       s3At,
		relayed:    map[string]*s3.Client{},
	}
	if err := c.subscribe(*group); err != nil {
		fail(err)
	}
	answer(map[string]any{"msg": "claim client ready"})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		words := strings.Fields(in.Text())
		if len(words) == 0 {
			continue
		}
		var out map[string]any
		switch words[0] {
		case "payload":
			n, _ := strconv.Atoi(words[1])
			c.payload = make([]byte, n)
			_, err = rand.Read(c.payload)
			out = map[string]any{"ok": true}
		case "direct":
			via := c.s3
			if len(words) > 1 {
				if c.relayed[words[1]] == nil {
					c.relayed[words[1]] = c.s3At(words[1])
				}
				via = c.relayed[words[1]]
			}
			out, err = c.direct(via)
		case "claim":
			out, err = c.claim(words[1])
		default:
			err = fmt.Errorf("unknown command %q", words[0])
		}
		if err != nil {
			fail(err)
		}
		answer(out)
	}
}

func answer(v any) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "claimclient:", err)
	os.Exit(1)
}

// subscribe opens the Subscribe stream; its deliveries go to c.deliveries.
func (c *client) subscribe(group string) error {
	stream, err := c.conn.NewStream(c.ctx, &grpc.StreamDesc{ServerStreams: true}, "/prism.data.v1.Consumer/Subscribe",
		grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	req := rawgrpc.AppendString(nil, 2, group)
	req = protowire.AppendVarint(protowire.AppendTag(req, 3, protowire.VarintType), 4)
	if err := stream.SendMsg(&req); err != nil {
		return err
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	go func() {
		for {
			d := &delivery{}
			if err := stream.RecvMsg(d); err != nil {
				fail(fmt.Errorf("subscribe: %w", err))
			}
			c.deliveries <- d
		}
	}()
	return nil
}

func (c *client) direct(via *s3.Client) (map[string]any, error) {
	key := fmt.Sprintf("direct/go-%d", time.Now().UnixNano())
	cpu := cpuMs(0)
	started := time.Now()
	_, err := via.PutObject(c.ctx, &s3.PutObjectInput{
		Bucket: &c.bucket, Key: &key, Body: bytes.NewReader(c.payload), ContentLength: aws.Int64(int64(len(c.payload))),
	})
	if err != nil {
		return nil, err
	}
	put := time.Now()
	res, err := via.GetObject(c.ctx, &s3.GetObjectInput{Bucket: &c.bucket, Key: &key})
	if err != nil {
		return nil, err
	}
	back := make([]byte, aws.ToInt64(res.ContentLength))
	_, err = io.ReadFull(res.Body, back)
	res.Body.Close()
	if err != nil || len(back) != len(c.payload) {
		return nil, fmt.Errorf("direct: short read (%v)", err)
	}
	end := time.Now()
	clientCpu := cpuMs(0) - cpu
	// Deleted again: SeaweedFS runs out of volumes for a bucket that keeps gigabytes of them.
	if _, err := via.DeleteObject(c.ctx, &s3.DeleteObjectInput{Bucket: &c.bucket, Key: &key}); err != nil {
		return nil, err
	}
	return map[string]any{"ms": ms(end.Sub(started)), "firstMs": ms(put.Sub(started)), "secondMs": ms(end.Sub(put)),
		"clientCpuMs": clientCpu}, nil
}

func (c *client) claim(mode string) (map[string]any, error) {
	messageID := fmt.Sprintf("go-%d", time.Now().UnixNano())
	proxyBefore := cpuMs(c.proxyPid)
	cpu := cpuMs(0)
	started := time.Now()
	var err error
	if mode == "upload" {
		err = c.upload(messageID)
	} else {
		err = c.publish(messageID)
	}
	if err != nil {
		return nil, err
	}
	proxyPublished := cpuMs(c.proxyPid)
	published := time.Now()
	var d *delivery
	for d = range c.deliveries {
		if d.messageID == messageID {
			break
		}
		// Another message (a retry of an earlier one): settled, so it does not hold a slot of max_in_flight.
		if err := c.ack(d); err != nil {
			return nil, err
		}
	}
	if len(d.payload) != len(c.payload) {
		return nil, fmt.Errorf("claim: short delivery (%d of %d bytes)", len(d.payload), len(c.payload))
	}
	end := time.Now()
	proxyDelivered := cpuMs(c.proxyPid)
	clientCpu := cpuMs(0) - cpu
	if err := c.ack(d); err != nil {
		return nil, err
	}
	return map[string]any{"ms": ms(end.Sub(started)), "firstMs": ms(published.Sub(started)), "secondMs": ms(end.Sub(published)),
		"cpuMs": proxyDelivered - proxyBefore, "publishCpuMs": proxyPublished - proxyBefore,
		"deliveryCpuMs": proxyDelivered - proxyPublished, "clientCpuMs": clientCpu}, nil
}

// ack is Consumer/Acknowledge of a delivery, with success.
func (c *client) ack(d *delivery) error {
	req := rawgrpc.AppendString(rawgrpc.AppendString(nil, 1, d.subscriptionID), 2, d.deliveryID)
	req = protowire.AppendVarint(protowire.AppendTag(req, 3, protowire.VarintType), 1)
	var reply []byte
	return c.conn.Invoke(c.ctx, "/prism.data.v1.Consumer/Acknowledge", &req, &reply, grpc.ForceCodec(rawCodec{}))
}

// upload is Producer/PublishUpload: the head (message id, size, SHA-256), then the data frames.
func (c *client) upload(messageID string) error {
	stream, err := c.conn.NewStream(c.ctx, &grpc.StreamDesc{ClientStreams: true}, "/prism.data.v1.Producer/PublishUpload",
		grpc.ForceCodec(rawCodec{}))
	if err != nil {
		return err
	}
	sum := sha256.Sum256(c.payload)
	head := rawgrpc.AppendString(nil, 5, messageID)
	head = protowire.AppendVarint(protowire.AppendTag(head, 6, protowire.VarintType), uint64(len(c.payload)))
	head = rawgrpc.AppendString(head, 7, hex.EncodeToString(sum[:]))
	frame := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), head)
	if err := stream.SendMsg(&frame); err != nil {
		return err
	}
	for at := 0; at < len(c.payload); at += frameBytes {
		chunk := c.payload[at:min(at+frameBytes, len(c.payload))]
		frame := protowire.AppendBytes(protowire.AppendTag(make([]byte, 0, len(chunk)+8), 2, protowire.BytesType), chunk)
		if err := stream.SendMsg(&frame); err != nil {
			return err
		}
	}
	if err := stream.CloseSend(); err != nil {
		return err
	}
	var reply []byte
	return stream.RecvMsg(&reply)
}

// publish is one unary Producer/Publish holding the whole payload.
func (c *client) publish(messageID string) error {
	req := protowire.AppendBytes(protowire.AppendTag(make([]byte, 0, len(c.payload)+64), 2, protowire.BytesType), c.payload)
	req = rawgrpc.AppendString(req, 6, messageID)
	var reply []byte
	return c.conn.Invoke(c.ctx, "/prism.data.v1.Producer/Publish", &req, &reply, grpc.ForceCodec(rawCodec{}))
}

// cpuMs is the user + system CPU time of process `pid` (0: this one) in milliseconds.
func cpuMs(pid int) float64 {
	if pid == 0 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e6
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+2:]))
	user, _ := strconv.ParseFloat(f[11], 64)
	system, _ := strconv.ParseFloat(f[12], 64)
	return (user + system) * 10 // clock ticks of 10 ms
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
