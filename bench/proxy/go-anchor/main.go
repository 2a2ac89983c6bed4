// The Go anchor of bench/proxy: a minimal grpc-go → go-redis proxy serving prism.data.v1.KeyValue
// Get and BatchGet, the yardstick the Prism proxy is measured against (issue "Data-plane
// performance"). Bench only: no auth, no routing beyond the x-prism-namespace key prefix (the
// Prism redis driver's `<namespace>:<key>`), no metrics. The wire format is decoded by hand with
// protowire (no protoc here), fields as in proto/prism/data/v1/keyvalue.proto.
//
//	go-anchor -listen 127.0.0.1:0 -redis redis://127.0.0.1:6379 -key-prefix keyvalue/cache/
//
// Prints {"msg":"bench server ready","port":N,"pid":P} once serving.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"prism.bench/go-anchor/rawgrpc"
)

// stringFields returns every length-delimited value of field `num` (a string key, a repeated key).
func stringFields(b []byte, num protowire.Number) ([]string, error) {
	var out []string
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			return nil, protowire.ParseError(l)
		}
		b = b[l:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			out = append(out, string(v))
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		b = b[m:]
	}
	return out, nil
}

// getResponse appends a GetResponse {found = 1; value = 2}.
func getResponse(b []byte, found bool, value string) []byte {
	if found {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, value)
	}
	return b
}

type anchor struct {
	rdb       *redis.Client
	keyPrefix string
}

func (a *anchor) prefix(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	ns := md.Get("x-prism-namespace")
	if len(ns) == 0 || ns[0] == "" {
		return "", status.Error(codes.InvalidArgument, "x-prism-namespace is required")
	}
	return ns[0] + ":" + a.keyPrefix, nil
}

func (a *anchor) get(ctx context.Context, req []byte) ([]byte, error) {
	p, err := a.prefix(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := stringFields(req, 1)
	if err != nil || len(keys) == 0 {
		return nil, status.Error(codes.InvalidArgument, "a key is required")
	}
	v, err := a.rdb.Get(ctx, p+keys[len(keys)-1]).Result()
	if err == redis.Nil {
		return []byte{}, nil
	}
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return getResponse(nil, true, v), nil
}

func (a *anchor) batchGet(ctx context.Context, req []byte) ([]byte, error) {
	p, err := a.prefix(ctx)
	if err != nil {
		return nil, err
	}
	keys, err := stringFields(req, 1)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if len(keys) == 0 {
		return []byte{}, nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = p + k
	}
	vals, err := a.rdb.MGet(ctx, full...).Result()
	if err != nil {
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	out := make([]byte, 0, 64*len(vals))
	var item []byte
	for _, v := range vals {
		s, ok := v.(string)
		item = getResponse(item[:0], ok, s)
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, item)
	}
	return out, nil
}

var keyValue = grpc.ServiceDesc{
	ServiceName: "prism.data.v1.KeyValue",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Get", Handler: rawgrpc.Unary((*anchor).get)},
		{MethodName: "BatchGet", Handler: rawgrpc.Unary((*anchor).batchGet)},
	},
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "gRPC listen address")
	redisURL := flag.String("redis", "redis://127.0.0.1:6379", "Redis URL")
	keyPrefix := flag.String("key-prefix", "", "after `<namespace>:` in every Redis key")
	flag.Parse()
	opts, err := redis.ParseURL(*redisURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		fmt.Fprintln(os.Stderr, "redis:", err)
		os.Exit(1)
	}
	err = rawgrpc.Serve(*listen, func(server *grpc.Server) {
		server.RegisterService(&keyValue, &anchor{rdb: rdb, keyPrefix: *keyPrefix})
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = rdb.Close()
}
