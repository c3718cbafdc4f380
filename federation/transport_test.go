package federation

import (
	"bytes"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"testing"
	"time"
)

// A holder of the pool key could push 20 MiB states, 128 at once, the
// memberlist defaults (issue 21, finding 5: 40 of 19 MiB took a leader to
// 1.7 GB). A node takes at most maxStreams streams at once, closes any
// beyond, frees a slot when memberlist closes a stream, and reads no more
// than maxStreamBytes of one.
func TestStreamsBounded(t *testing.T) {
	tr, err := newBoundTransport("127.0.0.1", 0, log.New(io.Discard, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tr.GetAutoBindPort()))
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		return c
	}
	var held []net.Conn
	for range maxStreams {
		dial()
		select {
		case c := <-tr.StreamCh():
			held = append(held, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d of %d not handed to memberlist", len(held)+1, maxStreams)
		}
	}
	extra := dial()
	extra.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := extra.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stream %d was kept open while %d are held", maxStreams+1, maxStreams)
	}

	held[0].Close() // memberlist is done with one: its slot is free
	big := dial()
	var next net.Conn
	select {
	case next = <-tr.StreamCh():
	case <-time.After(10 * time.Second):
		t.Fatal("a stream after one was closed was not handed on")
	}
	go big.Write(bytes.Repeat([]byte{0xee}, 2*maxStreamBytes))
	n, err := io.Copy(io.Discard, next)
	if err != nil || n != maxStreamBytes {
		t.Fatalf("read %d bytes (%v) of a 2 MiB push, want the first %d", n, err, maxStreamBytes)
	}
}
