// A kubectl-like exec client built on the real moby/spdystream, for the interop test in
// spdystream-interop.test.ts: HTTP upgrade, then the error/stdin/stdout/stderr streams opened
// and awaited one by one, stdin written and half-closed, everything read to EOF, and a JSON
// summary printed. Built by the test in GOPATH mode against Debian's
// golang-github-docker-spdystream-dev; the test skips when that is not installed.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/moby/spdystream"
)

// replayConn hands spdystream the bytes the HTTP response parser already buffered.
type replayConn struct {
	net.Conn
	reader *bufio.Reader
}

func (c *replayConn) Read(p []byte) (int, error) { return c.reader.Read(p) }

type summary struct {
	Protocol    string `json:"protocol"`
	Stdout      string `json:"stdout"`
	StdoutBytes int64  `json:"stdoutBytes"`
	StdoutSha   string `json:"stdoutSha256"`
	Stderr      string `json:"stderr"`
	Status      string `json:"status"`
	PingOK      bool   `json:"pingOk"`
}

func die(what string, err error) {
	fmt.Fprintf(os.Stderr, "spdystream client: %s: %v\n", what, err)
	os.Exit(1)
}

// prefixWriter keeps the first bytes it sees for the summary while hashing all of them.
type prefixWriter struct {
	keep []byte
	n    int64
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	if len(w.keep) < 4096 {
		room := 4096 - len(w.keep)
		if room > len(p) {
			room = len(p)
		}
		w.keep = append(w.keep, p[:room]...)
	}
	w.n += int64(len(p))
	return len(p), nil
}

func main() {
	addr, path, stdinText := os.Args[1], os.Args[2], os.Args[3]
	// Optional filler after the text, to push enough stdin through that the server's
	// WINDOW_UPDATE frames reach spdystream (which must tolerate them).
	filler := 0
	if len(os.Args) > 4 {
		fmt.Sscanf(os.Args[4], "%d", &filler)
	}
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		die("dial", err)
	}
	request := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n" +
		"Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n" +
		"X-Stream-Protocol-Version: v4.channel.k8s.io\r\n" +
		"X-Stream-Protocol-Version: v3.channel.k8s.io\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(request)); err != nil {
		die("write upgrade request", err)
	}
	reader := bufio.NewReader(conn)
	resp, err := http.ReadResponse(reader, nil)
	if err != nil {
		die("read upgrade response", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		die("upgrade", fmt.Errorf("status %d", resp.StatusCode))
	}
	session, err := spdystream.NewConnection(&replayConn{conn, reader}, false)
	if err != nil {
		die("spdy connection", err)
	}
	go session.Serve(spdystream.NoOpStreamHandler)

	open := func(streamType string) *spdystream.Stream {
		headers := http.Header{}
		headers.Set("streamType", streamType)
		stream, err := session.CreateStream(headers, nil, false)
		if err != nil {
			die("create "+streamType, err)
		}
		if err := stream.WaitTimeout(10 * time.Second); err != nil {
			die("reply for "+streamType, err)
		}
		return stream
	}
	errorStream := open("error")
	stdin := open("stdin")
	stdout := open("stdout")
	stderr := open("stderr")

	_, pingErr := session.Ping()

	go func() {
		stdin.Write([]byte(stdinText))
		chunk := make([]byte, 64*1024)
		for i := range chunk {
			chunk[i] = 'z'
		}
		for left := filler; left > 0; left -= len(chunk) {
			n := len(chunk)
			if left < n {
				n = left
			}
			if _, err := stdin.Write(chunk[:n]); err != nil {
				die("write stdin", err)
			}
		}
		stdin.Close()
	}()
	hash := sha256.New()
	kept := &prefixWriter{}
	outDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.MultiWriter(hash, kept), stdout)
		outDone <- err
	}()
	errOut, err := io.ReadAll(stderr)
	if err != nil {
		die("read stderr", err)
	}
	if err := <-outDone; err != nil {
		die("read stdout", err)
	}
	status, err := io.ReadAll(errorStream)
	if err != nil {
		die("read error stream", err)
	}
	out := summary{
		Protocol:    resp.Header.Get("X-Stream-Protocol-Version"),
		Stdout:      string(kept.keep),
		StdoutBytes: kept.n,
		StdoutSha:   hex.EncodeToString(hash.Sum(nil)),
		Stderr:      string(errOut),
		Status:      string(status),
		PingOK:      pingErr == nil,
	}
	json.NewEncoder(os.Stdout).Encode(out)
	session.Close()
}
