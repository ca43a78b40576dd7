// Server mode: the Go side of the network-server workloads W10-W12 of
// docs/benchmarks.md. weft_showcase starts this program as a child process,
// drives it with a load generator and stops it with SIGTERM:
//
//	weft_go_peer -serve=http -port=0   # W10: net/http answering "Hello, World!"
//	weft_go_peer -serve=echo -port=0   # W11, W12: net, a goroutine per connection
//
// The server binds 127.0.0.1 only (port 0: the kernel picks one), prints exactly
// one line, `listening 127.0.0.1:<port>`, once it accepts connections, and exits
// with status 0 on SIGTERM or SIGINT. GOMAXPROCS is left as set (the showcase
// sets it to the worker count of the other servers through the environment).
package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

// echoBufferBytes is what each connection reads into: the size every echo
// server of the workloads uses (Asio's own echo example reads into 1 KiB), so
// that W12's memory per connection compares the runtimes, not the buffers.
const echoBufferBytes = 1024

var helloBody = []byte("Hello, World!")

// serve runs the server `kind` on 127.0.0.1:port until SIGTERM or SIGINT and
// returns the exit status.
func serve(kind string, port int) int {
	if port < 0 || port > 65535 {
		fmt.Fprintf(os.Stderr, "weft_go_peer: -port is %d; it must be 0 to 65535\n", port)
		return 2
	}
	var run func(net.Listener) error
	switch kind {
	case "http":
		run = serveHTTP
	case "echo":
		run = serveEcho
	default:
		fmt.Fprintf(os.Stderr, "weft_go_peer: -serve is %q; it must be http or echo\n", kind)
		return 2
	}

	// Subscribed before the listening line, so that a signal sent as soon as the
	// line is read is never lost.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)

	listener, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "weft_go_peer: %v\n", err)
		return 1
	}
	// os.Stdout is not buffered: the line is out when Printf returns.
	fmt.Printf("listening %s\n", listener.Addr().String())

	failed := make(chan error, 1)
	go func() { failed <- run(listener) }()
	select {
	case <-stop:
		// Closing the listener ends the accept loop; open connections end with
		// the process.
		listener.Close()
		return 0
	case err := <-failed:
		fmt.Fprintf(os.Stderr, "weft_go_peer: -serve=%s: %v\n", kind, err)
		return 1
	}
}

// serveHTTP answers every request with the 13-byte body "Hello, World!" as
// text/plain; net/http keeps connections alive and adds Date and
// Content-Length, as nginx does.
func serveHTTP(listener net.Listener) error {
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(helloBody)
	})
	err := (&http.Server{Handler: handler}).Serve(listener)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// serveEcho starts one goroutine per accepted connection, which writes back
// whatever it reads until the peer closes. net sets TCP_NODELAY on every TCP
// connection by default, as the other echo servers do explicitly.
func serveEcho(listener net.Listener) error {
	for {
		conn, err := listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go echo(conn)
	}
}

func echo(conn net.Conn) {
	defer conn.Close()
	buffer := make([]byte, echoBufferBytes)
	for {
		n, err := conn.Read(buffer)
		if n > 0 {
			if _, werr := conn.Write(buffer[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
