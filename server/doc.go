// Package server is the lampi-pkg update server, as http.Handlers: it
// serves a repository's published tree read-only, accepts authenticated
// package uploads that it publishes through the repo package's locked,
// atomic path, and exposes /healthz and Prometheus /metrics. It never
// listens by itself: the caller (package updateserver, which lampi-pkg
// serve runs) owns the net.Listener, TLS and shutdown.
//
// # Basics
//
//	srv, err := server.New(server.Options{Dir: "/srv/repo", Now: time.Now, Logger: slog.Default()})
//	defer srv.Close()
//	hs := &http.Server{Handler: srv}
//	front := srv.Front(hs)
//	go front.Serve(ln) // plain HTTP; hs.ServeTLS(ln, cert, key) for TLS
//	…
//	front.Shutdown(ctx)
//
// Routes:
//
//	GET  /dists/…, /pool/…          the published tree (GET and HEAD)
//	GET  /<name>.gpg|.asc|.pub      the public keys of a keyring at the top of the repository
//	POST /api/v1/repos/{codename}/packages   upload one .deb, or several (multipart) published
//	                                         together; ?dry_run=1 returns verdicts only (bearer token)
//	GET  /api/v1/repos               the distributions the token may upload to
//	GET  /healthz, /metrics         liveness and Prometheus text exposition
//	Options.Extra                   further handlers (fleet dashboard, API)
//
// The upload API's JSON answers and refusals (upload.Result,
// upload.APIError) and its client are in package server/upload, which
// imports nothing of this package.
//
// Files are resolved with os.Root opened at dists/ and pool/, so neither
// "..", nor an encoded or double-encoded variant, nor a symbolic link
// inside the repository can reach conf/, db/ or anything outside those two
// trees; names starting with '.' (the publisher's temporary files) are
// never served, nor is anything but a regular file (files are opened
// with O_NONBLOCK, so a FIFO is refused at once instead of holding a
// thread until a writer comes). A keyring file at the top is served as
// the public keys it holds, re-serialized, never as it is; one holding
// secret key material anywhere is not served (signing.ReadPublicKeyring).
// The server serves what is at those paths now: when
// dists/, pool/ or the whole repository is replaced (a backup restored, a
// synced tree moved into place, a symbolic link switched), the next
// request opens the new directory (on Linux an inotify watch on every
// directory the paths are looked up through says when to look; elsewhere
// each request checks). Responses carry a strong ETag, Last-Modified and
// Accept-Ranges; If-None-Match, Range and If-Range are answered as RFC
// 9110 says (http.ServeContent). If-Modified-Since is answered 304 only
// for the bytes the client holds: each version of a file under dists/
// (outside by-hash/) gets its own Last-Modified, which never goes back,
// and the request must name it exactly (see dates.go). Nothing is compressed on
// the fly: apt asks for the .gz/.xz indices itself, and a Content-Encoding
// on them would make it store decompressed bytes under a compressed name.
//
// ETags: a file of at most 1 MiB (InRelease, Release, most indices) gets
// the SHA-256 of its content, computed once per (device, inode, size,
// mtime, ctime) and cached, so "has anything changed?" costs one open and
// one fstat; bigger files get a tag made of that identity. The publisher
// replaces files by rename, which always gives a new inode and ctime, so
// a cached tag can never describe other bytes.
//
// Plain HTTP is best served through [Server.Front] (lampi-pkg serve
// does): a fast path in front of net/http answers simple GET and HEAD
// requests for files under dists/ and pool/ — apt's and the agents'
// "has anything changed?" and downloads — parsing them in place and
// answering from the ETag cache (304) or with one openat2 and
// sendfile(2); every other request, and everything after it on the same
// connection, is handed with the bytes already read to the http.Server,
// so its answers are net/http's. The fast path's answers are the same
// bytes (Date aside) as net/http's for the same request (tested side by
// side); it exists because net/http's per-request machinery costs more
// CPU than the rest of a 304.
//
// The access log: Options.AccessLog takes the per-request records in
// slog's JSON format from a specialised encoder; [LogWriter] is the
// asynchronous buffer for it (never blocks a request; lines it has to
// drop are counted in /metrics).
//
// Connections are capped in all and per client address
// (Options.MaxConns, Options.MaxConnsPerAddr) by the Front, or by
// [Server.Listener] for a server without it (TLS); one over a cap is
// closed when accepted. The Front closes a connection whose first
// request's head has not arrived within the http.Server's
// ReadHeaderTimeout, as net/http does.
//
// Uploads are authenticated by bearer tokens (see [TokenStore]), size
// limited, staged in a temporary file, checked as a .deb (at most
// Options.MaxValidations uploads at a time, each control member within
// Options.MaxControlSize, which bounds the memory of a check) and, when
// Options.RequireSignature names a keyring for the distribution, checked
// for a good origin signature (debsigs _gpgorigin) before the repo
// package includes and publishes them.
//
// # Caveats
//
// One upload is published at a time per server (uploads queue for as
// long as their clients wait); other writers (the CLI, another server)
// are coordinated by the repository lock, and an upload that waits for it
// longer than Options.LockTimeout is answered 503 with Retry-After.
package server
