package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Credentials are the keys of an S3-compatible object store. The
// library never reads them from the environment: the command line gets
// them (AWS_ACCESS_KEY_ID… or the shared credentials file) and passes
// them in. String never shows the secret.
type S3Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	// Provider, if set, supplies the keys instead, when the client needs
	// them and again when they expire: one of minio-go's credential
	// providers (credentials.FileAWSCredentials reads the shared
	// credentials file, and runs its credential_process or SSO login).
	Provider credentials.Provider
}

// String implements fmt.Stringer without the secret parts.
func (c S3Credentials) String() string {
	switch {
	case c.Provider != nil:
		return "credentials from a provider"
	case c.AccessKeyID == "":
		return "anonymous"
	}
	return "access key " + c.AccessKeyID
}

// GoString keeps %#v from printing the secret.
func (c S3Credentials) GoString() string { return c.String() }

// S3Options configure an S3Storage.
type S3Options struct {
	// Endpoint is host[:port] of the service ("s3.amazonaws.com" when empty).
	Endpoint string
	// Region of the bucket ("" lets the client find out).
	Region string
	// Bucket and Prefix name where the tree goes: object
	// "Prefix/dists/stable/InRelease". Prefix has no leading or
	// trailing slash; "" puts the tree at the bucket's top.
	Bucket, Prefix string
	// PathStyle addresses the bucket as http://endpoint/bucket/… (MinIO,
	// Ceph) instead of http://bucket.endpoint/….
	PathStyle bool
	// Insecure uses plain http (a MinIO on the loopback interface).
	Insecure bool
	// Credentials sign the requests; empty ones send anonymous requests.
	Credentials S3Credentials
	// Transport replaces the HTTP transport (tests).
	Transport http.RoundTripper
}

// S3Storage is a Storage in an S3-compatible bucket (AWS S3, MinIO, Ceph
// RGW, R2…), through minio-go. A PUT of one object is atomic: readers
// get the old object or the new one. There is no rename, so the order in
// which objects are written is the publisher's business (the repository
// syncs a target in an order that keeps it consistent).
type S3Storage struct {
	opts   S3Options
	client *minio.Client
}

var _ Storage = (*S3Storage)(nil)

// NewS3Storage makes a client for the bucket; it does not contact the
// service (Check does).
func NewS3Storage(o S3Options) (*S3Storage, error) {
	if o.Bucket == "" {
		return nil, fmt.Errorf("s3: no bucket given")
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.Endpoint == "" {
		o.Endpoint = "s3.amazonaws.com"
	}
	var creds *credentials.Credentials
	if o.Credentials.Provider != nil {
		creds = credentials.New(o.Credentials.Provider)
	} else if o.Credentials.AccessKeyID != "" {
		creds = credentials.NewStaticV4(o.Credentials.AccessKeyID, o.Credentials.SecretAccessKey, o.Credentials.SessionToken)
	} else {
		creds = credentials.New(&credentials.Static{Value: credentials.Value{SignerType: credentials.SignatureAnonymous}})
	}
	mo := &minio.Options{Creds: creds, Secure: !o.Insecure, Region: o.Region, Transport: o.Transport, MaxRetries: 5}
	if o.PathStyle {
		mo.BucketLookup = minio.BucketLookupPath
	}
	c, err := minio.New(o.Endpoint, mo)
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint %q: %w", o.Endpoint, err)
	}
	o.Credentials = S3Credentials{} // the client has them; keep no copy that could be printed
	return &S3Storage{opts: o, client: c}, nil
}

// Client returns the minio-go client (bucket policies in tests).
func (s *S3Storage) Client() *minio.Client { return s.client }

// Bucket returns the bucket name.
func (s *S3Storage) Bucket() string { return s.opts.Bucket }

// Prefix returns the prefix of the tree's keys ("" at the bucket's top).
func (s *S3Storage) Prefix() string { return s.opts.Prefix }

// Where names the bucket and prefix for messages: "s3://bucket/prefix at
// endpoint".
func (s *S3Storage) Where() string {
	u := "s3://" + s.opts.Bucket
	if s.opts.Prefix != "" {
		u += "/" + s.opts.Prefix
	}
	return u + " at " + s.opts.Endpoint
}

func (s *S3Storage) key(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	if s.opts.Prefix == "" {
		return name, nil
	}
	return s.opts.Prefix + "/" + name, nil
}

func (s *S3Storage) name(key string) string {
	if s.opts.Prefix == "" {
		return key
	}
	return strings.TrimPrefix(key, s.opts.Prefix+"/")
}

// Check makes sure the bucket exists and the credentials may use it,
// within timeout; its errors say what to do.
func (s *S3Storage) Check(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ok, err := s.client.BucketExists(ctx, s.opts.Bucket)
	if err != nil {
		return s.explain("reach bucket", err)
	}
	if !ok {
		return fmt.Errorf("%s: %w: bucket %q does not exist; create it (mc mb, aws s3 mb) or fix the URL", s.Where(), ErrTarget, s.opts.Bucket)
	}
	return nil
}

// explain turns a client error into a message that says what to do. It
// never includes credentials (minio-go's errors do not carry them).
func (s *S3Storage) explain(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %s: no answer in time; is the endpoint right and the service up?", s.Where(), ErrTarget, what)
	}
	var nerr net.Error
	var operr *net.OpError
	if errors.As(err, &operr) || errors.As(err, &nerr) {
		return fmt.Errorf("%s: %w: %s: cannot reach the endpoint (%v); is the endpoint right and the service up?", s.Where(), ErrTarget, what, errors.Unwrap(err))
	}
	resp := minio.ToErrorResponse(err)
	switch resp.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId":
		return fmt.Errorf("%s: %w: %s: credentials refused (%s); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the shared credentials file (AWS_PROFILE)", s.Where(), ErrTarget, what, resp.Code)
	case "AccessDenied":
		return fmt.Errorf("%s: %w: %s: access denied; give the key write access to the bucket", s.Where(), ErrTarget, what)
	case "NoSuchBucket":
		return fmt.Errorf("%s: %w: bucket %q does not exist; create it or fix the URL", s.Where(), ErrTarget, s.opts.Bucket)
	}
	if resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%s: %w: %s: forbidden (HTTP 403); check the credentials and the bucket's permissions", s.Where(), ErrTarget, what)
	}
	return fmt.Errorf("%s: %w: %s: %v", s.Where(), ErrTarget, what, err)
}

func (s *S3Storage) putOpts(size int64, meta map[string]string) minio.PutObjectOptions {
	o := minio.PutObjectOptions{UserMetadata: meta, ContentType: "application/octet-stream"}
	if size >= 0 && size < 64<<20 {
		o.DisableMultipart = true
	} else {
		o.PartSize = 16 << 20
		o.NumThreads = 2
	}
	return o
}

// WriteFile implements Storage.
func (s *S3Storage) WriteFile(ctx context.Context, name string, data []byte) error {
	return s.Put(ctx, name, data, nil)
}

// Put is WriteFile with user metadata on the object (x-amz-meta-…).
func (s *S3Storage) Put(ctx context.Context, name string, data []byte, meta map[string]string) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	return s.dated(ctx, name, func() (time.Time, error) {
		if _, err := s.client.PutObject(ctx, s.opts.Bucket, key, bytes.NewReader(data), int64(len(data)), s.putOpts(int64(len(data)), meta)); err != nil {
			return time.Time{}, s.explain("upload "+name, err)
		}
		return time.Time{}, nil
	})
}

// Upload copies the local file src to name with user metadata on the
// object, leaving src in place; minio-go uploads big files in parts.
func (s *S3Storage) Upload(ctx context.Context, name, src string, meta map[string]string) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	return s.dated(ctx, name, func() (time.Time, error) {
		if _, err := s.client.FPutObject(ctx, s.opts.Bucket, key, src, s.putOpts(st.Size(), meta)); err != nil {
			return time.Time{}, s.explain("upload "+name, err)
		}
		return time.Time{}, nil
	})
}

// PutFile implements Storage: it uploads src and removes it.
func (s *S3Storage) PutFile(ctx context.Context, name, src string) error {
	if err := s.Upload(ctx, name, src, nil); err != nil {
		return err
	}
	os.Remove(src)
	return nil
}

// Copy implements Storage with a server-side copy.
func (s *S3Storage) Copy(ctx context.Context, src, dst string) error {
	sk, err := s.key(src)
	if err != nil {
		return err
	}
	dk, err := s.key(dst)
	if err != nil {
		return err
	}
	return s.dated(ctx, dst, func() (time.Time, error) {
		info, err := s.client.CopyObject(ctx, minio.CopyDestOptions{Bucket: s.opts.Bucket, Object: dk},
			minio.CopySrcOptions{Bucket: s.opts.Bucket, Object: sk})
		if err != nil {
			return time.Time{}, s.explain("copy "+src+" to "+dst, err)
		}
		return info.LastModified, nil // the copy's answer says it
	})
}

// dated runs write, which creates or replaces name and returns the new
// object's Last-Modified when the service's answer tells it (zero: ask),
// so that a name revalidated by date ends up with a Last-Modified strictly
// later, in whole seconds, than the object it replaced (see dates.go).
// The service dates an object when it receives it, so an object that
// landed in the old one's second is written again once the service's
// clock, as its Last-Modified shows it, has passed that second. It costs
// a HEAD request before (and one after an upload) per such name.
func (s *S3Storage) dated(ctx context.Context, name string, write func() (time.Time, error)) error {
	if !RevalidatedByDate(name) {
		_, err := write()
		return err
	}
	old, err := s.Stat(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		_, err := write()
		return err
	}
	if err != nil {
		return err
	}
	want := old.LastModified.Unix() + 1 // the first second allowed
	for attempt := 1; ; attempt++ {
		cur, err := write()
		if err != nil {
			return err
		}
		if cur.IsZero() {
			info, err := s.Stat(ctx, name)
			if err != nil {
				return err
			}
			cur = info.LastModified
		}
		if cur.Unix() >= want {
			return nil
		}
		// The write happened within cur's second: after this long the
		// service's clock is past the old object's.
		gap := time.Unix(want, 0).Sub(cur)
		if gap > maxDateWait || attempt == 3 {
			return fmt.Errorf("%s: %w: %s: the service dated the new object %s, not after the one it replaces (%s); clients revalidating by date would not see the change: is the service's clock behind? The next sync writes it again",
				s.Where(), ErrTarget, name, cur.UTC().Format(time.RFC3339), old.LastModified.UTC().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(gap + clockSlack):
		}
	}
}

// Open implements Storage.
func (s *S3Storage) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	key, err := s.key(name)
	if err != nil {
		return nil, err
	}
	if _, err := s.Stat(ctx, name); err != nil {
		return nil, err
	}
	obj, err := s.client.GetObject(ctx, s.opts.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.explain("download "+name, err)
	}
	return obj, nil
}

// Stat returns an object's information; a missing object gives an error
// matching fs.ErrNotExist.
func (s *S3Storage) Stat(ctx context.Context, name string) (minio.ObjectInfo, error) {
	key, err := s.key(name)
	if err != nil {
		return minio.ObjectInfo{}, err
	}
	info, err := s.client.StatObject(ctx, s.opts.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return info, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return info, s.explain("stat "+name, err)
	}
	return info, nil
}

// Exists implements Storage.
func (s *S3Storage) Exists(ctx context.Context, name string) (bool, error) {
	_, err := s.Stat(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// Remove implements Storage.
func (s *S3Storage) Remove(ctx context.Context, name string) error {
	key, err := s.key(name)
	if err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.opts.Bucket, key, minio.RemoveObjectOptions{}); err != nil {
		if minio.ToErrorResponse(err).Code == "NoSuchKey" {
			return nil
		}
		return s.explain("remove "+name, err)
	}
	return nil
}

// List implements Storage.
func (s *S3Storage) List(ctx context.Context, dir string) ([]string, error) {
	objs, err := s.ListObjects(ctx, dir)
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.Name)
	}
	return out, err
}

// ObjectInfo is a listed object: storage name, size and ETag (without
// quotes).
type ObjectInfo struct {
	Name string
	Size int64
	ETag string
}

// ListObjects lists the objects under dir, recursively.
func (s *S3Storage) ListObjects(ctx context.Context, dir string) ([]ObjectInfo, error) {
	key, err := s.key(dir)
	if err != nil {
		return nil, err
	}
	var out []ObjectInfo
	for o := range s.client.ListObjects(ctx, s.opts.Bucket, minio.ListObjectsOptions{Prefix: key + "/", Recursive: true}) {
		if o.Err != nil {
			return out, s.explain("list "+dir, o.Err)
		}
		out = append(out, ObjectInfo{Name: s.name(o.Key), Size: o.Size, ETag: strings.Trim(o.ETag, `"`)})
	}
	return out, nil
}

// Sync implements Storage: a completed PUT is durable.
func (s *S3Storage) Sync(ctx context.Context) error { return nil }
