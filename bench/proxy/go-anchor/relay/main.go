// The Go twin of bench/proxy/relay.js: a process that only relays bytes, from a Unix socket or a
// TCP address to a TCP target, both ways, so launched.js and claim-check can show that the floor
// of one extra process hop is the machine's and not Node's. Bench only.
//
//	relay -listen /path/to.sock|127.0.0.1:0 -to 127.0.0.1:6379
//
// Prints {"msg":"bench relay ready","port":…} once listening (port 0 for a Unix socket).
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
)

func main() {
	listen := flag.String("listen", "", "Unix socket path (with a /) or host:port to accept on")
	to := flag.String("to", "", "host:port to relay to")
	flag.Parse()
	network := "tcp"
	if strings.Contains(*listen, "/") {
		network = "unix"
		_ = os.Remove(*listen)
	}
	l, err := net.Listen(network, *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	port := 0
	if addr, ok := l.Addr().(*net.TCPAddr); ok {
		port = addr.Port
	}
	fmt.Printf("{\"msg\":\"bench relay ready\",\"port\":%d}\n", port)
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
