// Package rawgrpc is what the Go anchors' gRPC servers share: a codec that hands handlers the
// message bytes unparsed (the anchors read and write the wire format by hand with protowire), and
// serving with the ready line bench/proxy/lib.js waits for.
package rawgrpc

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
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
// {"msg":"bench server ready","port":N,"pid":P}, and serves until SIGTERM or SIGINT.
func Serve(listen string, register func(*grpc.Server)) error {
	lis, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	server := grpc.NewServer(grpc.ForceServerCodec(Codec{}))
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
