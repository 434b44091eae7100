package main

// The plugin side of P10: a volume plugin written the way Go plugins are
// written with go-plugins-helpers, which is net/http's server and ServeMux
// with encoding/json's Decoder and Encoder; only the standard library is
// used here, so nothing of go-plugins-helpers is copied or needed.
// `go-peer plugin-serve --socket PATH` listens on PATH, prints "ready",
// and serves until its stdin closes. bench-raw's "serve" scenario drives
// it and bench-rust's plugin-serve with the same load.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

// The media type go-plugins-helpers answers with.
const pluginContentType = "application/vnd.docker.plugins.v1.1+json"

// The VolumeDriver.Get shapes of Docker's volume plugin protocol.
type volume struct {
	Name       string
	Mountpoint string                 `json:",omitempty"`
	CreatedAt  string                 `json:",omitempty"`
	Status     map[string]interface{} `json:",omitempty"`
}

type getRequest struct{ Name string }

type getResponse struct {
	Volume *volume `json:",omitempty"`
}

type errResponse struct{ Err string }

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", pluginContentType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func pluginServe(o *options) error {
	if o.socket == "" {
		return fmt.Errorf("--socket is required")
	}
	_ = os.Remove(o.socket)
	l, err := net.Listen("unix", o.socket)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/Plugin.Activate", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string][]string{"Implements": {"VolumeDriver"}})
	})
	mux.HandleFunc("/VolumeDriver.Get", func(w http.ResponseWriter, r *http.Request) {
		var req getRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, errResponse{Err: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, getResponse{Volume: &volume{
			Name:       req.Name,
			Mountpoint: "/mnt/bench/" + req.Name,
		}})
	})
	srv := &http.Server{Handler: mux}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		_ = srv.Close()
	}()
	fmt.Println("ready")
	err = srv.Serve(l)
	_ = os.Remove(o.socket)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
