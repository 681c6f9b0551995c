// Package s3 is the blob store on an S3-compatible service (MinIO, AWS S3
// and the like), through minio-go.
//
// Keys are checked with storage.ValidKey before any request, exactly as the
// local backend does, so a key that works on one backend works on the other.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/trailmap/trailmap/storage"
)

// partSize is the multipart part size. minio-go buffers one part in memory
// per upload of unknown size (and of known size from a plain io.Reader);
// 16 MiB is its minimum and caps objects of unknown size at ~156 GiB.
const partSize = 16 << 20

// Config says where the bucket is and how to reach it.
type Config struct {
	Endpoint  string // host[:port], no scheme: "127.0.0.1:9000", "s3.eu-west-1.amazonaws.com"
	Bucket    string // created by New when missing
	AccessKey string
	SecretKey string
	Region    string // optional; empty lets the client discover it
	UseSSL    bool   // https instead of http
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	switch {
	case c.Endpoint == "":
		errs = append(errs, errors.New("s3 endpoint is required"))
	case strings.Contains(c.Endpoint, "://"):
		errs = append(errs, fmt.Errorf("s3 endpoint %q must be host[:port] without a scheme (set UseSSL for https)", c.Endpoint))
	case strings.ContainsAny(c.Endpoint, "/?# "):
		errs = append(errs, fmt.Errorf("s3 endpoint %q must be host[:port] without a path", c.Endpoint))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("s3 bucket is required"))
	} else if err := s3utils.CheckValidBucketNameStrict(c.Bucket); err != nil {
		errs = append(errs, fmt.Errorf("s3 bucket %q: %w", c.Bucket, err))
	}
	if c.AccessKey == "" {
		errs = append(errs, errors.New("s3 access key is required"))
	}
	if c.SecretKey == "" {
		errs = append(errs, errors.New("s3 secret key is required"))
	}
	return errors.Join(errs...)
}

// Client stores blobs as objects in one bucket. It is safe for concurrent use.
type Client struct {
	core   minio.Core    // Core.GetObject fails up front, unlike Client.GetObject
	probe  *minio.Client // same connections, no retries: for Ready
	bucket string
}

var _ storage.Blobs = (*Client)(nil)

// New connects to the bucket described by cfg, creating the bucket if it does
// not exist yet. Buckets are addressed path-style, which every S3-compatible
// server understands.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	transport, err := minio.DefaultTransport(cfg.UseSSL)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	opts := func(maxRetries int) *minio.Options {
		return &minio.Options{
			Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
			Secure:       cfg.UseSSL,
			Transport:    transport,
			Region:       cfg.Region,
			BucketLookup: minio.BucketLookupPath,
			MaxRetries:   maxRetries,
		}
	}
	mc, err := minio.New(cfg.Endpoint, opts(0)) // 0: minio-go's default of 10 tries
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	probe, err := minio.New(cfg.Endpoint, opts(1))
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	c := &Client{core: minio.Core{Client: mc}, probe: probe, bucket: cfg.Bucket}
	if err := c.ensureBucket(ctx, cfg.Region); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) ensureBucket(ctx context.Context, region string) error {
	ok, err := c.core.BucketExists(ctx, c.bucket)
	if err != nil {
		return fmt.Errorf("check bucket %q: %w", c.bucket, err)
	}
	if ok {
		return nil
	}
	err = c.core.MakeBucket(ctx, c.bucket, minio.MakeBucketOptions{Region: region})
	// Another node may have created it in between.
	if err != nil && minio.ToErrorResponse(err).Code != minio.BucketAlreadyOwnedByYou {
		return fmt.Errorf("create bucket %q: %w", c.bucket, err)
	}
	return nil
}

// Bucket returns the bucket name.
func (c *Client) Bucket() string { return c.bucket }

// Ready reports whether the server answers and the bucket exists. It backs
// /readyz, so it tries once instead of retrying with back-off for seconds.
func (c *Client) Ready(ctx context.Context) error {
	ok, err := c.probe.BucketExists(ctx, c.bucket)
	if err != nil {
		return fmt.Errorf("s3 not ready: %w", err)
	}
	if !ok {
		return fmt.Errorf("s3 not ready: bucket %q does not exist", c.bucket)
	}
	return nil
}

// Put implements storage.Blobs. Objects larger than 16 MiB go up as
// multipart uploads; minio-go aborts a failed one, so nothing becomes
// visible. A body of unknown size is buffered up to 16 MiB to find out
// whether one plain PUT will do.
func (c *Client) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := storage.ValidKey(key); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	switch {
	case size < 0:
		// minio-go would start a multipart upload with a 16 MiB buffer even
		// for a few bytes. ReadAll grows its buffer only as data comes.
		head, err := io.ReadAll(io.LimitReader(r, partSize+1))
		if err != nil {
			return fmt.Errorf("put %q: %w", key, err)
		}
		if len(head) <= partSize {
			r, size = bytes.NewReader(head), int64(len(head))
		} else {
			r = io.MultiReader(bytes.NewReader(head), r)
		}
	case size == 0:
		// minio-go sends no body then, so it would never notice a surplus.
		if err := (&exactReader{r: r}).checkEnd(); err != io.EOF {
			return fmt.Errorf("put %q: %w", key, err)
		}
	case size > 0:
		r = &exactReader{r: r, left: size}
	}
	_, err := c.core.Client.PutObject(ctx, c.bucket, key, r, size, minio.PutObjectOptions{
		PartSize:    partSize,
		ContentType: "application/octet-stream",
	})
	if err != nil {
		return fmt.Errorf("put %q: %w", key, mapErr(ctx, err))
	}
	return nil
}

// exactReader passes on a stream of a declared size and fails when the
// stream turns out shorter or longer. Left alone, minio-go would send a
// short last part with a wrong Content-Length and retry that for seconds,
// and would never read a surplus at all. An error from Read aborts the
// upload, so nothing is stored.
type exactReader struct {
	r    io.Reader
	left int64
}

var (
	errShortBody = errors.New("body shorter than its declared size")
	errLongBody  = errors.New("body longer than its declared size")
)

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, e.checkEnd()
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err == io.EOF && e.left > 0:
		return n, errShortBody
	case err != nil:
		return n, err
	case e.left == 0:
		// Look for a surplus now: the uploader may never read past size.
		if err := e.checkEnd(); err != io.EOF {
			return 0, err
		}
		return n, io.EOF
	}
	return n, nil
}

// checkEnd returns io.EOF if the stream has ended, as it should have.
func (e *exactReader) checkEnd() error {
	var one [1]byte
	n, err := io.ReadFull(e.r, one[:])
	switch {
	case n > 0:
		return errLongBody
	case err == io.EOF:
		return io.EOF
	}
	return err
}

// Get implements storage.Blobs. It costs one request, which fails up front
// when the key is missing.
func (c *Client) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	rc, err := c.get(ctx, key, off, length)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	return rc, nil
}

func (c *Client) get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if err := storage.ValidKey(key); err != nil {
		return nil, err
	}
	if off < 0 {
		return nil, fmt.Errorf("negative offset %d", off)
	}
	if length == 0 {
		// There is no empty HTTP range; only check that the key exists.
		if _, err := c.core.StatObject(ctx, c.bucket, key, minio.StatObjectOptions{}); err != nil {
			return nil, mapErr(ctx, err)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	var opts minio.GetObjectOptions
	switch {
	case off == 0 && length < 0:
		// Whole object: no Range header, which also suits empty objects.
	case length < 0:
		if err := opts.SetRange(off, 0); err != nil { // bytes=off-
			return nil, err
		}
	default:
		if err := opts.SetRange(off, off+length-1); err != nil {
			return nil, err
		}
	}
	body, _, _, err := c.core.GetObject(ctx, c.bucket, key, opts)
	if err != nil {
		// 416 comes only for an existing key whose size is <= off.
		if minio.ToErrorResponse(err).StatusCode == http.StatusRequestedRangeNotSatisfiable {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return nil, mapErr(ctx, err)
	}
	return body, nil
}

// List implements storage.Blobs. S3 lists keys in UTF-8 byte order, which is
// the lexical order the contract asks for.
func (c *Client) List(ctx context.Context, prefix string, fn func(storage.Object) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when fn bails out
	for obj := range c.core.Client.ListObjects(lctx, c.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list %q: %w", prefix, mapErr(ctx, obj.Err))
		}
		if storage.ValidKey(obj.Key) != nil {
			continue // written by something else; unreachable through Get
		}
		if err := fn(storage.Object{Key: obj.Key, Size: obj.Size}); err != nil {
			return err
		}
	}
	// The listing may end quietly when ctx is cancelled.
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return nil
}

// Delete implements storage.Blobs. S3 answers a delete of a missing key with
// success, which is the contract.
func (c *Client) Delete(ctx context.Context, key string) error {
	if err := storage.ValidKey(key); err != nil {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	if err := c.core.RemoveObject(ctx, c.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %q: %w", key, mapErr(ctx, err))
	}
	return nil
}

// mapErr turns a missing key into storage.ErrNotFound and makes sure a done
// ctx shows in the error chain, whatever shape minio-go gave the failure.
func mapErr(ctx context.Context, err error) error {
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}
