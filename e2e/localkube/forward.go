package localkube

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// forwarder makes the API server reachable from the host: it listens on
// 127.0.0.1 in the root netns and splices each connection to a connection
// dialled inside the cluster netns. TLS passes through untouched, so the
// serving certificate carries 127.0.0.1 for the host's kubeconfig.
type forwarder struct {
	ln     net.Listener
	dial   func(ctx context.Context) (net.Conn, error)
	log    zerolog.Logger
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
}

func newForwarder(listenAddr string, dial func(ctx context.Context) (net.Conn, error), log zerolog.Logger) (*forwarder, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, err
	}
	f := &forwarder{ln: ln, dial: dial, log: log, conns: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) addr() string { return f.ln.Addr().String() }

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				f.log.Error().Err(err).Msg("accept")
			}
			return
		}
		f.wg.Add(1)
		go f.splice(c)
	}
}

func (f *forwarder) track(c net.Conn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if add {
		if f.closed {
			return false
		}
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
	return true
}

func (f *forwarder) splice(in net.Conn) {
	defer f.wg.Done()
	defer in.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	out, err := f.dial(ctx)
	cancel()
	if err != nil {
		// Expected while the API server is stopped on purpose; the client
		// sees a reset, as it would with a dead API server.
		f.log.Debug().Err(err).Msg("dial API server in cluster netns")
		return
	}
	defer out.Close()
	if !f.track(in, true) {
		return
	}
	defer f.track(in, false)
	f.track(out, true)
	defer f.track(out, false)
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go cp(out, in)
	go cp(in, out)
	<-done
	<-done
}

// close stops accepting and cuts every open connection, so watches from the
// host end promptly at teardown.
func (f *forwarder) close() {
	_ = f.ln.Close()
	f.mu.Lock()
	f.closed = true
	for c := range f.conns {
		_ = c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
