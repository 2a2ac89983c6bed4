// Package rawgrpc is what the Go anchors and bench clients share: a codec that hands handlers the
// message bytes unparsed, the wire format read and written by hand with protowire, a unary
// handler over bytes, and serving with the ready line bench/proxy/lib.js waits for.
package rawgrpc

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// Codec hands the handlers the message bytes unparsed and sends their bytes as they are.
type Codec struct{}

func (Codec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (Codec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (Codec) Name() string { return "proto" }

// stopWait is how long SIGTERM waits for the calls in flight before cutting them (a stream that
// never ends on its own, such as Consume, is cut).
const stopWait = 2 * time.Second

// Serve listens on `listen`, lets `register` add the services, prints
// {"msg":"bench server ready","port":N,"pid":P}, and serves until SIGTERM or SIGINT. `options`
// come after the Codec, so one of them may force another codec.
func Serve(listen string, register func(*grpc.Server), options ...grpc.ServerOption) error {
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	server := grpc.NewServer(append([]grpc.ServerOption{grpc.ForceServerCodec(Codec{})}, options...)...)
	register(server)
	ready, _ := json.Marshal(map[string]any{
		"msg": "bench server ready", "port": lis.Addr().(*net.TCPAddr).Port, "pid": os.Getpid(),
	})
	fmt.Println(string(ready))
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		time.AfterFunc(stopWait, server.Stop)
		server.GracefulStop()
	}()
	return server.Serve(lis)
}

// Unary is a unary method's handler over the message bytes: `f` gets the service (srv) and the
// request, and its answer is sent as it is.
func Unary[S any](f func(S, context.Context, []byte) ([]byte, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		var in []byte
		if err := dec(&in); err != nil {
			return nil, err
		}
		out, err := f(srv.(S), ctx, in)
		if err != nil {
			return nil, err
		}
		return &out, nil
	}
}

// Fields calls `each` with every field of b: its number, and its bytes (length-delimited values)
// or value (varints); other wire types are skipped.
func Fields(b []byte, each func(num protowire.Number, bytes []byte, value uint64)) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var m int
		switch typ {
		case protowire.BytesType:
			var v []byte
			if v, m = protowire.ConsumeBytes(b); m >= 0 {
				each(num, v, 0)
			}
		case protowire.VarintType:
			var v uint64
			if v, m = protowire.ConsumeVarint(b); m >= 0 {
				each(num, nil, v)
			}
		default:
			m = protowire.ConsumeFieldValue(num, typ, b)
		}
		if m < 0 {
			return protowire.ParseError(m)
		}
		b = b[m:]
	}
	return nil
}

// AppendString appends field `num` holding `s` (a string or bytes field).
func AppendString(b []byte, num protowire.Number, s string) []byte {
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}
