//! Building the one `aws_sdk_s3::Client` a remote uses (one connection pool).
//!
//! Credentials come only from the standard AWS chain ([`from_default_chain`]:
//! environment, shared profile, web identity / IRSA, EKS Pod Identity and
//! container credentials, IMDS) or, for tests and embedding, from explicit
//! [`Credentials`]. Every client gets the same protocol settings:
//!
//! - request checksums and response validation only "when required": recent SDKs
//!   otherwise add CRC32 trailers (aws-chunked bodies) that S3-compatible servers
//!   support unevenly, and over plain http they would be sent as signed
//!   aws-chunked bodies (a SHA-256 pass over every byte, on both ends);
//!   integrity is carried by `Content-MD5` on every upload (the object id is
//!   the md5 of its bytes; a staged upload is checked by its ETag instead) and
//!   by fetch's own md5 check;
//! - path-style addressing whenever an endpoint is configured (option or
//!   `AWS_ENDPOINT_URL[_S3]`), as S3-compatible servers expect;
//! - standard retries with exponential backoff and full jitter on 5xx,
//!   throttling, timeouts and connection errors, with this remote's own retry
//!   budget (the SDK's default budget is shared process-wide and small: a burst of
//!   faults in one transfer would otherwise stop retries in another);
//! - connect and read timeouts from [`S3Tuning`](super::S3Tuning).

use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::imds::region::ImdsRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::region::ProfileFileRegionProvider;
use aws_config::BehaviorVersion;
use aws_sdk_s3::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::Client;
use aws_types::service_config::ServiceConfigKey;
use aws_types::SdkConfig;

use super::settings::S3Settings;

/// Region used when neither the remote nor the AWS chain names one (as the AWS CLI).
const FALLBACK_REGION: &str = "us-east-1";

/// A client whose credentials and defaults come from the standard AWS chain,
/// with the remote's `profile` when set.
pub(super) async fn from_default_chain(settings: &S3Settings) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region_chain(settings));
    if let Some(profile) = &settings.profile {
        loader = loader.profile_name(profile);
    }
    let sdk = loader.load().await;
    from_sdk_config(settings, &sdk)
}

/// The remote's `region`, else `AWS_REGION`/`AWS_DEFAULT_REGION`, else the
/// profile's, else (for AWS itself, no endpoint) the instance metadata service,
/// else `us-east-1`. An S3-compatible server's region cannot come from EC2's
/// metadata, and asking for it off EC2 costs a timeout and a warning.
fn region_chain(settings: &S3Settings) -> RegionProviderChain {
    let mut profile = ProfileFileRegionProvider::builder();
    if let Some(name) = &settings.profile {
        profile = profile.profile_name(name);
    }
    let chain = RegionProviderChain::first_try(settings.region.clone().map(Region::new))
        .or_else(EnvironmentVariableRegionProvider::new())
        .or_else(profile.build());
    let chain = if settings.endpoint.is_none() {
        chain.or_else(ImdsRegionProvider::builder().build())
    } else {
        chain
    };
    chain.or_else(Region::new(FALLBACK_REGION))
}

/// A client over an already loaded [`SdkConfig`] (its credentials, region and
/// endpoint are used unless the settings override them).
pub(super) fn from_sdk_config(settings: &S3Settings, sdk: &SdkConfig) -> Client {
    let chain_endpoint = sdk.endpoint_url().is_some() || s3_endpoint_configured(sdk);
    let mut builder = aws_sdk_s3::config::Builder::from(sdk);
    if settings.region.is_none() && sdk.region().is_none() {
        builder = builder.region(Region::new(FALLBACK_REGION));
    }
    Client::from_conf(common(builder, settings, chain_endpoint).build())
}

/// A client with fixed credentials that reads nothing from the environment.
pub(super) fn with_credentials(settings: &S3Settings, credentials: Credentials) -> Client {
    let builder = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .credentials_provider(credentials)
        .region(Region::new(FALLBACK_REGION));
    Client::from_conf(common(builder, settings, false).build())
}

fn common(
    mut b: aws_sdk_s3::config::Builder,
    settings: &S3Settings,
    chain_endpoint: bool,
) -> aws_sdk_s3::config::Builder {
    let t = &settings.tuning;
    if let Some(region) = &settings.region {
        b = b.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &settings.endpoint {
        b = b.endpoint_url(endpoint.clone());
    }
    if settings.endpoint.is_some() || chain_endpoint {
        b = b.force_path_style(true);
    }
    let partition = RetryPartition::custom(format!("cairn-{}", uuid::Uuid::new_v4().simple()))
        .token_bucket(TokenBucket::unlimited())
        .build();
    b.retry_config(
        RetryConfig::standard()
            .with_max_attempts(t.max_attempts.max(1))
            .with_initial_backoff(t.initial_backoff)
            .with_max_backoff(t.max_backoff),
    )
    .retry_partition(partition)
    .timeout_config(
        TimeoutConfig::builder()
            .connect_timeout(t.connect_timeout)
            .read_timeout(t.read_timeout)
            .build(),
    )
    .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
    .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
}

/// Whether `AWS_ENDPOINT_URL_S3` (or `endpoint_url` in the profile's `s3` section)
/// is set, which the SDK applies on its own.
fn s3_endpoint_configured(sdk: &SdkConfig) -> bool {
    let Ok(key) = ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
    else {
        return false;
    };
    sdk.service_config()
        .and_then(|conf| conf.load_config(key))
        .is_some()
}
