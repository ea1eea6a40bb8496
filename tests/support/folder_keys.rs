//! One place where s3s-fs differs from S3 in a way DVC trips on, mended for
//! the test and benchmark servers: a HEAD or GET of a key that is a folder on
//! s3s-fs's disk (a prefix such as `store/files/md5`, which DVC probes before
//! a pull) is answered 500 there; S3 has no such object, and answers 404.

use std::path::Path;

use http::{Method, Request, Response, StatusCode};

/// Whether `req` (path-style, as cairn and DVC send to these servers) asks
/// for a key that is a folder under s3s-fs's `root`.
pub fn is_folder_key<B>(root: &Path, req: &Request<B>) -> bool {
    let path = req.uri().path().trim_start_matches('/');
    (req.method() == Method::HEAD || req.method() == Method::GET)
        && req.uri().query().is_none()
        && path.contains('/')
        && !path.ends_with('/')
        && !path.split('/').any(|c| c == ".." || c.is_empty())
        && root.join(path).is_dir()
}

/// An S3 error answer: `status`, with `code` and `message` in the XML body.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: Option<&str>,
) -> Response<s3s::Body> {
    let message = message
        .map(|m| format!("<Message>{m}</Message><RequestId>cairn-test</RequestId>"))
        .unwrap_or_default();
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>{message}</Error>"
    );
    let mut resp = Response::new(s3s::Body::from(xml));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/xml"),
    );
    resp
}

/// S3's answer for a key it does not have.
pub fn no_such_key() -> Response<s3s::Body> {
    error_response(
        StatusCode::NOT_FOUND,
        "NoSuchKey",
        Some("The specified key does not exist."),
    )
}
