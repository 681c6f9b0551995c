-- The distinct page URLs of each project, with how many page views have
-- them, kept by triggers on pages: the sessions list's page pattern filter
-- (*x*, a substring) reads these few thousand rows instead of every page
-- view, so a pattern that matches nothing answers at once and one that
-- matches few page views takes their sessions from pages_path. A URL
-- leaves when its last page view does (retention, forgetting a person).
-- A page view whose session row is gone when it is deleted leaves its
-- count too high, never too low: the table is a superset of the URLs in
-- pages, which is all the filter relies on. (PostgreSQL's twin keeps no
-- counts: see there.)
CREATE TABLE page_urls (
	project_id INTEGER NOT NULL,
	url        TEXT    NOT NULL,
	path       TEXT    NOT NULL,
	views      INTEGER NOT NULL,
	PRIMARY KEY (project_id, url)
) WITHOUT ROWID;

INSERT INTO page_urls (project_id, url, path, views)
	SELECT s.project_id, p.url, MIN(p.path), COUNT(*)
	FROM pages p JOIN sessions s ON s.id = p.session_id
	GROUP BY s.project_id, p.url;

CREATE TRIGGER page_urls_add AFTER INSERT ON pages BEGIN
	INSERT INTO page_urls (project_id, url, path, views)
		SELECT project_id, NEW.url, NEW.path, 1 FROM sessions WHERE id = NEW.session_id
		ON CONFLICT (project_id, url) DO UPDATE SET views = views + 1;
END;

CREATE TRIGGER page_urls_drop AFTER DELETE ON pages BEGIN
	UPDATE page_urls SET views = views - 1
		WHERE project_id = (SELECT project_id FROM sessions WHERE id = OLD.session_id) AND url = OLD.url;
	DELETE FROM page_urls
		WHERE project_id = (SELECT project_id FROM sessions WHERE id = OLD.session_id) AND url = OLD.url AND views <= 0;
END;
