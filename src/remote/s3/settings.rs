//! What an S3 remote is and how cairn talks to it, as plain values.
//!
//! [`S3Location`] is the `s3://bucket/prefix` url and the DVC 3 keys under it.
//! [`S3Settings`] adds what `.dvc/config` says about the remote, read the way DVC
//! reads it: `endpointurl` (an S3-compatible server; path-style addressing is used
//! then), `region`, `profile` (a shared-config profile of the standard AWS
//! credential chain), `connect_timeout` and `read_timeout` (seconds, as DVC's).
//! Credentials never come from here: a `.dvc/config.local` holding
//! `access_key_id`/`secret_access_key` is ignored with a warning, and the AWS
//! chain (environment, shared profile, web identity, container credentials) is used.
//!
//! [`S3Tuning`] holds the transfer knobs with their defaults. They are not DVC
//! options (DVC validates its config and would reject unknown keys), so they come
//! from the API or from `CAIRN_S3_*` environment variables ([`S3Tuning::from_env`]).

use std::time::Duration;

use crate::dvc::{ObjectId, RemoteConfig};
use crate::remote::RemoteError;

const MIB: u64 = 1 << 20;
/// S3's smallest part (every part but the last).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest number of parts in one upload.
pub const MAX_PARTS: u64 = 10_000;
/// Multipart threshold for S3-compatible servers (an `endpointurl`).
///
/// A multipart upload costs the client a second md5 pass (each part's
/// `Content-MD5` must be sent before the part) and some servers a copy of the
/// whole object on completion; it pays off where one connection cannot carry the
/// bandwidth, as with AWS S3. S3-compatible servers usually sit close by and are
/// CPU-bound instead: on s3s-fs (2 cores, loopback) a 1 GiB file goes up in
/// about half the time as one PUT. Single PUTs are allowed up to 5 GiB.
pub const ENDPOINT_MULTIPART_THRESHOLD: u64 = 2 << 30;

/// A bucket and the key prefix the DVC remote lives under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket name.
    pub bucket: String,
    /// The key prefix without leading or trailing `/` (may be empty).
    pub prefix: String,
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`.
    pub fn parse(url: &str) -> Result<S3Location, String> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("s3") => rest,
            _ => return Err("expected an s3://bucket/prefix url".into()),
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("the url names no bucket".into());
        }
        if bucket.contains(['?', '#', '@']) {
            return Err(format!("{bucket:?} is not a bucket name"));
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The key of object `id`: `<prefix>/files/md5/<2 hex>/<30 hex>[.dir]`.
    pub fn key(&self, id: &ObjectId) -> String {
        self.under_prefix(&id.remote_key())
    }

    /// The listing prefix of the objects whose md5 starts with `two_hex`:
    /// `<prefix>/files/md5/<2 hex>/`.
    pub fn shard_prefix(&self, two_hex: &str) -> String {
        self.under_prefix(&format!("files/md5/{two_hex}/"))
    }

    /// Where a file being uploaded while it is hashed is staged:
    /// `<prefix>/tmp/cairn-staging/<name>`, outside `files/`, so DVC never
    /// takes it for an object.
    pub fn staging_key(&self, name: &str) -> String {
        self.under_prefix(&format!("tmp/cairn-staging/{name}"))
    }

    /// The listing prefix of every object: `<prefix>/files/md5/`.
    pub fn md5_prefix(&self) -> String {
        self.under_prefix("files/md5/")
    }

    fn under_prefix(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_string()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}

/// Transfer knobs. The defaults suit both AWS and a local S3-compatible server.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Tuning {
    /// Objects of at least this many bytes are uploaded in parts (default 64 MiB;
    /// [`S3Settings::from_remote_config`] raises it to 2 GiB for an `endpointurl`,
    /// see [`ENDPOINT_MULTIPART_THRESHOLD`]).
    pub multipart_threshold: u64,
    /// Size of each part (default 16 MiB; at least 5 MiB, raised so that no
    /// upload needs more than 10,000 parts).
    pub part_size: u64,
    /// Parts in flight at once, over all objects of this remote (default 8). Parts
    /// are streamed from the file, so memory does not grow with this.
    pub part_jobs: usize,
    /// Objects of at least this many bytes are downloaded with concurrent ranged
    /// GETs of `part_size` bytes (default: never, `u64::MAX`).
    pub ranged_get_threshold: u64,
    /// [`Remote::missing`](crate::remote::Remote::missing) sends one HEAD per id up
    /// to this many ids, and lists the key prefixes the ids fall in beyond (default 64).
    pub head_max: usize,
    /// Beyond `head_max` ids: a remote estimated to hold at most this many objects
    /// is listed in one go, a larger one shard by shard (default 20,000).
    pub list_all_max: u64,
    /// HEAD or LIST requests in flight at once (default 16).
    pub check_jobs: usize,
    /// Attempts per request, the first included (default 8).
    pub max_attempts: u32,
    /// First retry delay; it doubles up to `max_backoff`, with full jitter (default 200 ms).
    pub initial_backoff: Duration,
    /// Longest retry delay (default 20 s).
    pub max_backoff: Duration,
    /// TCP/TLS connect timeout (default 10 s; DVC option `connect_timeout`).
    pub connect_timeout: Duration,
    /// Time from sending a request to its response headers, a whole part's
    /// upload included (default 120 s; DVC option `read_timeout`).
    pub read_timeout: Duration,
    /// Buffer size for reading files into request bodies (default 256 KiB).
    /// Files up to this size are read into memory and sent from there.
    pub read_buffer: usize,
    /// A file of at least this many bytes (and below `multipart_threshold`)
    /// whose object the remote probably lacks is uploaded while it is hashed:
    /// to a staging key, then copied into place on the server once its md5 is
    /// known (default 32 MiB; `u64::MAX` turns this off). See
    /// [`Remote::put_file_hashing`](crate::remote::Remote::put_file_hashing).
    pub overlap_min: u64,
}

impl Default for S3Tuning {
    fn default() -> S3Tuning {
        S3Tuning {
            multipart_threshold: 64 * MIB,
            part_size: 16 * MIB,
            part_jobs: 8,
            ranged_get_threshold: u64::MAX,
            head_max: 64,
            list_all_max: 20_000,
            check_jobs: 16,
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            read_buffer: 256 * 1024,
            overlap_min: 32 * MIB,
        }
    }
}

impl S3Tuning {
    /// Applies `CAIRN_S3_MULTIPART_THRESHOLD`, `CAIRN_S3_PART_SIZE` (bytes, or with
    /// a `K`/`M`/`G` suffix meaning KiB/MiB/GiB), `CAIRN_S3_PART_JOBS`,
    /// `CAIRN_S3_RANGED_GET_THRESHOLD`, `CAIRN_S3_OVERLAP_MIN` and
    /// `CAIRN_S3_MAX_ATTEMPTS` when set.
    pub fn from_env(self) -> Result<S3Tuning, String> {
        self.with_vars(|name| std::env::var(name).ok())
    }

    /// [`S3Tuning::from_env`] with the variables looked up through `var`.
    pub fn with_vars(mut self, var: impl Fn(&str) -> Option<String>) -> Result<S3Tuning, String> {
        let size = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|v| parse_size(&v).ok_or_else(|| format!("{name}={v:?}: expected a size")))
                .transpose()
        };
        let count = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|v| {
                    v.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("{name}={v:?}: expected a positive number"))
                })
                .transpose()
        };
        if let Some(v) = size("CAIRN_S3_MULTIPART_THRESHOLD")? {
            self.multipart_threshold = v;
        }
        if let Some(v) = size("CAIRN_S3_PART_SIZE")? {
            self.part_size = v;
        }
        if let Some(v) = size("CAIRN_S3_RANGED_GET_THRESHOLD")? {
            self.ranged_get_threshold = v;
        }
        if let Some(v) = size("CAIRN_S3_OVERLAP_MIN")? {
            self.overlap_min = v;
        }
        if let Some(v) = count("CAIRN_S3_PART_JOBS")? {
            self.part_jobs = usize::try_from(v).unwrap_or(usize::MAX);
        }
        if let Some(v) = count("CAIRN_S3_MAX_ATTEMPTS")? {
            self.max_attempts = u32::try_from(v).unwrap_or(u32::MAX);
        }
        Ok(self)
    }

    /// The part size for an object of `size` bytes: the configured one, at least
    /// 5 MiB, and large enough for at most 10,000 parts.
    pub fn part_size_for(&self, size: u64) -> u64 {
        self.part_size
            .max(MIN_PART_SIZE)
            .max(size.div_ceil(MAX_PARTS))
    }
}

/// `123`, `64K`, `16M`, `1G` (binary multiples; a trailing `iB`/`B` is allowed).
fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, mult) = match t.char_indices().last()? {
        (i, 'K' | 'k') => (&t[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&t[..i], 1 << 20),
        (i, 'G' | 'g') => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// Everything needed to talk to one S3 remote, except credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct S3Settings {
    /// Bucket and prefix.
    pub location: S3Location,
    /// An S3-compatible server (`http://host:port`); addressing is path-style then.
    pub endpoint: Option<String>,
    /// The signing region; else the AWS chain's, else `us-east-1`.
    pub region: Option<String>,
    /// A profile of the shared AWS config/credentials files.
    pub profile: Option<String>,
    /// Transfer knobs.
    pub tuning: S3Tuning,
}

/// DVC S3 options that carry credentials; cairn never reads credentials from a
/// repository's config.
const CREDENTIAL_OPTIONS: &[&str] = &["access_key_id", "secret_access_key", "session_token"];

impl S3Settings {
    /// Settings for `location` with no endpoint, region or profile and default tuning.
    pub fn new(location: S3Location) -> S3Settings {
        S3Settings {
            location,
            endpoint: None,
            region: None,
            profile: None,
            tuning: S3Tuning::default(),
        }
    }

    /// Reads a `.dvc/config` remote section (`url = s3://...` and its options).
    /// Tuning is left at its defaults.
    pub fn from_remote_config(cfg: &RemoteConfig) -> Result<S3Settings, RemoteError> {
        let unsupported = |reason: String| RemoteError::Unsupported {
            url: cfg.url.clone(),
            reason,
        };
        let location = S3Location::parse(&cfg.url).map_err(unsupported)?;
        let opt = |key: &str| {
            cfg.options
                .get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut tuning = S3Tuning::default();
        for (key, slot) in [
            ("connect_timeout", &mut tuning.connect_timeout),
            ("read_timeout", &mut tuning.read_timeout),
        ] {
            if let Some(v) = opt(key) {
                let secs = v.parse::<f64>().ok().filter(|s| *s > 0.0 && s.is_finite());
                let secs = secs.ok_or_else(|| {
                    unsupported(format!(
                        "option {key} = {v:?}: expected a number of seconds"
                    ))
                })?;
                *slot = Duration::from_secs_f64(secs);
            }
        }
        if let Some(endpoint) = opt("endpointurl") {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(unsupported(format!(
                    "endpointurl = {endpoint:?}: expected an http:// or https:// url"
                )));
            }
        }
        for key in CREDENTIAL_OPTIONS {
            if cfg.options.contains_key(*key) {
                tracing::warn!(
                    remote = %cfg.name,
                    "ignoring DVC option {key}: cairn takes S3 credentials only from the AWS \
                     credential chain (environment, shared profile, web identity, container)"
                );
            }
        }
        let endpoint = opt("endpointurl").map(|e| e.trim_end_matches('/').to_string());
        if endpoint.is_some() {
            tuning.multipart_threshold = ENDPOINT_MULTIPART_THRESHOLD;
        }
        Ok(S3Settings {
            location,
            endpoint,
            region: opt("region"),
            profile: opt("profile"),
            tuning,
        })
    }

    /// `s3://bucket/prefix`, followed by the endpoint's scheme, host and port
    /// when one is set (never credentials, even if the endpoint url has some).
    pub fn display_url(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("{} at {}", self.location.url(), endpoint_origin(e)),
            None => self.location.url(),
        }
    }
}

/// `scheme://host[:port]` of an endpoint url, without user info or path.
pub(crate) fn endpoint_origin(endpoint: &str) -> String {
    let (scheme, rest) = endpoint.split_once("://").unwrap_or(("", endpoint));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if scheme.is_empty() {
        host.to_string()
    } else {
        format!("{scheme}://{host}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dvc::Md5;
    use std::collections::BTreeMap;

    #[test]
    fn location_parses_bucket_and_prefix() {
        let l = S3Location::parse("s3://bucket/some/prefix/").unwrap();
        assert_eq!(l.bucket, "bucket");
        assert_eq!(l.prefix, "some/prefix");
        assert_eq!(l.url(), "s3://bucket/some/prefix");
        let id = ObjectId::file(Md5::of_bytes(b"foo"));
        assert_eq!(
            l.key(&id),
            "some/prefix/files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8"
        );
        assert_eq!(l.shard_prefix("ac"), "some/prefix/files/md5/ac/");
        assert_eq!(l.md5_prefix(), "some/prefix/files/md5/");
        assert_eq!(l.staging_key("x"), "some/prefix/tmp/cairn-staging/x");
        let bare = S3Location::parse("S3://bucket").unwrap();
        assert_eq!(bare.prefix, "");
        assert_eq!(bare.url(), "s3://bucket");
        assert_eq!(
            bare.key(&ObjectId::dir(id.md5)),
            "files/md5/ac/bd18db4cc2f85cedef654fccc4a4d8.dir"
        );
        assert!(S3Location::parse("s3:///x").is_err());
        assert!(S3Location::parse("gs://b/x").is_err());
    }

    #[test]
    fn settings_from_dvc_config() {
        let mut options = BTreeMap::new();
        options.insert(
            "endpointurl".into(),
            "http://key:secret@127.0.0.1:9000/".into(),
        );
        options.insert("region".into(), "garage".into());
        options.insert("read_timeout".into(), "30".into());
        options.insert("secret_access_key".into(), "do-not-use".into());
        let cfg = RemoteConfig {
            name: "storage".into(),
            url: "s3://b/store".into(),
            options,
        };
        let s = S3Settings::from_remote_config(&cfg).unwrap();
        assert_eq!(s.region.as_deref(), Some("garage"));
        assert_eq!(s.tuning.read_timeout, Duration::from_secs(30));
        assert_eq!(s.tuning.multipart_threshold, ENDPOINT_MULTIPART_THRESHOLD);
        assert_eq!(s.display_url(), "s3://b/store at http://127.0.0.1:9000");
        assert!(!s.display_url().contains("secret"));

        let mut bad = cfg.clone();
        bad.options
            .insert("endpointurl".into(), "127.0.0.1:9000".into());
        assert!(S3Settings::from_remote_config(&bad).is_err());
        bad.options.insert("endpointurl".into(), "http://h".into());
        bad.options.insert("connect_timeout".into(), "soon".into());
        assert!(S3Settings::from_remote_config(&bad).is_err());
    }

    #[test]
    fn tuning_from_variables_and_part_sizes() {
        let vars = [
            ("CAIRN_S3_PART_SIZE", "8M"),
            ("CAIRN_S3_MULTIPART_THRESHOLD", "1GiB"),
            ("CAIRN_S3_PART_JOBS", "3"),
        ];
        let t = S3Tuning::default()
            .with_vars(|n| {
                vars.iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            })
            .unwrap();
        assert_eq!(t.part_size, 8 * MIB);
        assert_eq!(t.multipart_threshold, 1 << 30);
        assert_eq!(t.part_jobs, 3);
        assert!(S3Tuning::default()
            .with_vars(|n| (n == "CAIRN_S3_PART_JOBS").then(|| "0".to_string()))
            .is_err());
        let small = S3Tuning {
            part_size: 1,
            ..S3Tuning::default()
        };
        assert_eq!(small.part_size_for(100), MIN_PART_SIZE);
        let huge = 100_000 * MIB;
        assert!(huge.div_ceil(S3Tuning::default().part_size_for(huge)) <= MAX_PARTS);
        assert_eq!(parse_size("64K"), Some(64 << 10));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("x"), None);
    }
}
