//! The web console at `/console`: hand-written HTML, CSS and JavaScript modules from the
//! top-level `console/` folder, compiled into the binary, so it works offline on the loopback
//! address with nothing to build or fetch. It is a client of the admin and tenant APIs (it
//! calls them from the browser with the credentials the user types in) and has no route of
//! its own beyond its files.
//!
//! Files are looked up by exact name in a fixed table, never on the file system: a path that
//! is not one of its names (`..`, encoded slashes, anything) is a 404 and can reach nothing.

use crate::http::error::ApiError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// Where the console is served.
pub const CONSOLE_PATH: &str = "/console";

/// The page may run only its own scripts and styles and talk only to this origin; the QR code
/// is a `data:` PNG the tenant API returns. Nothing inline, nothing from elsewhere, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// The files are not fingerprinted, so a browser revalidates them (cheaply, by `ETag`) and
/// picks up a new binary's console at once.
const CACHE_CONTROL: &str = "no-cache";

/// One embedded file.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $name)),
        }
    };
}

/// Every file of `console/` (a unit test checks that none is missing).
pub const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("dom.js", "text/javascript; charset=utf-8"),
    asset!("charts.js", "text/javascript; charset=utf-8"),
    asset!("admin.js", "text/javascript; charset=utf-8"),
    asset!("tenant.js", "text/javascript; charset=utf-8"),
    asset!("events.js", "text/javascript; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
];

/// The page itself: `/console` and `/console/` both serve it.
const INDEX: &str = "index.html";

/// Each file's entity tag: a digest of its bytes, computed once.
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| format!("\"{}\"", &hex::encode(Sha256::digest(a.bytes))[..20]))
        .collect()
});

/// The total size of the console's files, in bytes.
pub fn page_weight() -> usize {
    ASSETS.iter().map(|a| a.bytes.len()).sum()
}

/// `GET /console`: the page.
pub async fn page(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    serve(&req, INDEX)
}

/// `GET /console/{asset}`: one of the console's files, by exact name.
pub async fn file(req: HttpRequest, asset: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = asset.into_inner();
    serve(&req, if name.is_empty() { INDEX } else { &name })
}

fn serve(req: &HttpRequest, name: &str) -> Result<HttpResponse, ApiError> {
    let Some(index) = ASSETS.iter().position(|a| a.name == name) else {
        return Err(ApiError::not_found(format!(
            "the console has no file {}",
            crate::http::error::truncated(req.path())
        )));
    };
    let (asset, etag) = (&ASSETS[index], &ETAGS[index]);
    let fresh = matches_etag(req, etag);
    let mut response = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, CACHE_CONTROL))
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ));
    if fresh {
        return Ok(response.finish());
    }
    Ok(response.content_type(asset.content_type).body(asset.bytes))
}

/// Whether `If-None-Match` names the file's current tag (or `*`).
fn matches_etag(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_folder_is_served() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/console");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
        on_disk.sort();
        served.sort();
        assert_eq!(on_disk, served);
    }

    /// A path with every parameter written `{}`: `/v1/sessions/{session}` is `/v1/sessions/{}`.
    fn shape(path: &str) -> String {
        let mut out = String::new();
        let mut depth = 0;
        for c in path.chars() {
            match c {
                '{' => {
                    if depth == 0 {
                        out.push_str("{}");
                    }
                    depth += 1;
                }
                '}' => depth -= 1,
                _ if depth == 0 => out.push(c),
                _ => {}
            }
        }
        out
    }

    /// The API paths the scripts name: string and template literals starting `/v1/` or
    /// `/admin/v1/`, up to a quote or a query (`${query(...)}`).
    fn called_paths() -> Vec<String> {
        let mut found = Vec::new();
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            for quote in ['\'', '`'] {
                for piece in text.split(quote).skip(1).step_by(2) {
                    if piece.starts_with("/v1/") || piece.starts_with("/admin/v1/") {
                        let path = piece.split("${query(").next().unwrap();
                        found.push(shape(path.replace("${", "{").as_str()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn the_console_calls_only_routes_the_tables_declare() {
        use crate::http::routes::{endpoints, local};
        let declared: Vec<String> = endpoints::all()
            .iter()
            .map(|e| shape(e.path))
            .chain(local::all().iter().map(|r| shape(&r.path)))
            .collect();
        let called = called_paths();
        assert!(called.len() > 20, "{called:?}");
        for path in called {
            assert!(
                declared.contains(&path),
                "the console calls {path}, which no route declares"
            );
        }
    }

    #[test]
    fn no_file_carries_inline_script_or_remote_origin() {
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            // The SVG namespace is a name, not a place the browser goes.
            let text = text.replace("http://www.w3.org/2000/svg", "");
            for banned in [
                "localStorage",
                "sessionStorage",
                "http://",
                "https://",
                "<script>",
            ] {
                assert!(!text.contains(banned), "{} has {banned}", asset.name);
            }
        }
    }
}
