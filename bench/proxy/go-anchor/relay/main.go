// The Go twin of bench/proxy/relay.js: a process that only relays bytes, from a Unix socket to a
// TCP target, both ways, so launched.js can show that the floor of one extra process hop is the
// machine's and not Node's. Bench only.
//
//	relay -listen /path/to.sock -to 127.0.0.1:6379
//
// Prints {"msg":"bench relay ready"} once listening.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
)

func main() {
	listen := flag.String("listen", "", "Unix socket path to accept on")
	to := flag.String("to", "", "host:port to relay to")
	flag.Parse()
	_ = os.Remove(*listen)
	l, err := net.Listen("unix", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(`{"msg":"bench relay ready"}`)
	for {
		client, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer client.Close()
			target, err := net.Dial("tcp", *to) // Go sets TCP_NODELAY on every TCP connection
			if err != nil {
				return
			}
			defer target.Close()
			go func() { _, _ = io.Copy(target, client) }()
			_, _ = io.Copy(client, target)
		}()
	}
}
