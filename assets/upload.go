package assets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Browser-side capture, for assets the server cannot fetch because they
// need the visitor's cookies (an intranet, an app behind a login): with
// data-assets="upload" the script offers the hashes of the same-origin
// images, fonts and style sheets the page loaded; the server answers
// which it lacks, and only those are uploaded. Uploads are held to what
// fetches are: a recorded page's origin, images, fonts and CSS only, the
// per-asset size and the project's daily caps.

// Offered is an asset a browser offers to upload.
type Offered struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// MaxOffers is how many assets one offer may name.
const MaxOffers = 100

// Errors of uploads, for the server's error mapping.
var (
	ErrUploadInvalid  = errors.New("invalid asset upload")             // 400
	ErrUploadOrigin   = errors.New("asset not from a recorded origin") // 403
	ErrUploadTooLarge = errors.New("asset too large")                  // 413
	ErrUploadQuota    = errors.New("asset quota spent for today")      // 429
)

// uploadable returns the check of an offered or uploaded asset's URL:
// http(s), from the origin of the page that sends it (the request's
// Origin, from) or of one of the project's recorded pages: a browser
// uploads only what its page's origin serves it. The project's origins
// are read once, when first needed.
func (s *Service) uploadable(ctx context.Context, project int64, from string) func(rawURL string) error {
	var pages []string
	read := false
	return func(rawURL string) error {
		o, ok := Origin(rawURL)
		if !ok || len(rawURL) > 2048 {
			return fmt.Errorf("%w: url must be an http(s) URL of at most 2048 bytes", ErrUploadInvalid)
		}
		if f, ok := Origin(from); ok && f == o {
			return nil
		}
		if !read {
			var err error
			if pages, err = s.store.Origins(ctx, project); err != nil {
				return err
			}
			read = true
		}
		for _, p := range pages {
			if strings.EqualFold(strings.TrimRight(p, "/"), o) {
				return nil
			}
		}
		return fmt.Errorf("%w: %s is not the origin of a page this project recorded", ErrUploadOrigin, o)
	}
}

// Offer answers which of the offered assets project lacks (from is the
// request's Origin): the hashes to
// upload. Offers of bytes it already has (uploaded for another page or
// session, or fetched) are recorded for the day at once, so the session
// plays with them.
func (s *Service) Offer(ctx context.Context, project int64, from string, offers []Offered) ([]string, error) {
	if len(offers) > MaxOffers {
		return nil, fmt.Errorf("%w: at most %d assets per offer", ErrUploadInvalid, MaxOffers)
	}
	now := s.now()
	day := unixDay(now)
	need := []string{}
	asked := map[string]bool{}
	check := s.uploadable(ctx, project, from)
	for _, o := range offers {
		if len(o.SHA256) != 64 || strings.Trim(o.SHA256, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("%w: sha256 must be 64 lower-case hex digits", ErrUploadInvalid)
		}
		if err := check(o.URL); err != nil {
			if errors.Is(err, ErrUploadOrigin) {
				continue // not ours to keep; the rest of the offer stands
			}
			return nil, err
		}
		if o.Size <= 0 || o.Size > s.cfg.MaxAssetBytes {
			continue
		}
		if c, ok, err := s.store.Lookup(ctx, project, o.URL, day); err != nil {
			return nil, err
		} else if ok && c.Status == StatusStored && c.SHA256 == o.SHA256 {
			continue
		}
		have, ok, err := s.store.ByHash(ctx, project, o.SHA256)
		if err != nil {
			return nil, err
		}
		if ok {
			have.URL, have.Day, have.FetchedAt, have.ETag = o.URL, day, now, ""
			if err := s.store.Record(ctx, have); err != nil {
				return nil, err
			}
			continue
		}
		if !asked[o.SHA256] {
			asked[o.SHA256] = true
			need = append(need, o.SHA256)
		}
	}
	return need, nil
}

// Upload stores an asset a browser sends: its bytes (at most the
// per-asset cap), as the copy of rawURL for today. ctype is the type the
// browser was served; only images, fonts and CSS are kept.
func (s *Service) Upload(ctx context.Context, project int64, from, rawURL, ctype string, body io.Reader) (Copy, error) {
	if err := s.uploadable(ctx, project, from)(rawURL); err != nil {
		return Copy{}, err
	}
	b, err := io.ReadAll(io.LimitReader(body, s.cfg.MaxAssetBytes+1))
	if err != nil {
		return Copy{}, fmt.Errorf("%w: %v", ErrUploadInvalid, err)
	}
	if int64(len(b)) > s.cfg.MaxAssetBytes {
		return Copy{}, fmt.Errorf("%w: at most %d bytes", ErrUploadTooLarge, s.cfg.MaxAssetBytes)
	}
	if len(b) == 0 {
		return Copy{}, fmt.Errorf("%w: empty body", ErrUploadInvalid)
	}
	t := mediaType(ctype, b)
	if !acceptable(KindImage, t) {
		return Copy{}, fmt.Errorf("%w: %s is not an image, font or style sheet", ErrUploadInvalid, t)
	}
	now := s.now()
	day := unixDay(now)
	u, err := s.store.Usage(ctx, project, day)
	if err != nil {
		return Copy{}, err
	}
	if (s.cfg.MaxProjectDayFetches > 0 && u.Fetches >= s.cfg.MaxProjectDayFetches) ||
		(s.cfg.MaxProjectDayBytes > 0 && u.Bytes+int64(len(b)) > s.cfg.MaxProjectDayBytes) {
		return Copy{}, ErrUploadQuota
	}
	sum := sha256.Sum256(b)
	c := Copy{ProjectID: project, URL: rawURL, Day: day, Status: StatusStored, SHA256: hex.EncodeToString(sum[:]),
		ContentType: t, Size: int64(len(b)), FetchedAt: now}
	if _, have, err := s.store.ByHash(ctx, project, c.SHA256); err != nil {
		return Copy{}, err
	} else if !have {
		if err := s.blobs.Put(ctx, Key(project, c.SHA256), bytes.NewReader(b), int64(len(b))); err != nil {
			return Copy{}, fmt.Errorf("store uploaded asset: %w", err)
		}
		s.m.bytes.Add(float64(len(b)))
	}
	if err := s.store.AddUsage(ctx, project, day, 1, int64(len(b))); err != nil {
		return Copy{}, err
	}
	if err := s.store.Record(ctx, c); err != nil {
		return Copy{}, err
	}
	return c, nil
}
