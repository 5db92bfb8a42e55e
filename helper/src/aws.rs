//! AWS SDK configuration.
//!
//! # Design
//!
//! One loader for every AWS client: the SDK's default chain (env, profile, SSO, IMDS) for
//! credentials and region, with the global `--region` and `--endpoint-url` flags layered on
//! top. `--endpoint-url` (or `AWS_ENDPOINT_URL`) points every service at an emulator such as
//! moto; tests additionally set `AWS_MAX_ATTEMPTS=1` so failures surface immediately.

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::cli::GlobalArgs;

/// Loads the shared SDK configuration for this invocation.
pub async fn sdk_config(g: &GlobalArgs) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = &g.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &g.endpoint_url {
        loader = loader.endpoint_url(url.clone());
    }
    loader.load().await
}

/// Formats an SDK error with its service error code and message (the default `Display`
/// of `SdkError` is just "service error").
pub fn describe_sdk_error<E, R>(err: &aws_sdk_ec2::error::SdkError<E, R>) -> String
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_ec2::error::SdkError;
    match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            match (e.code(), e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                _ => format!("{e}"),
            }
        }
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(e) = src {
                s.push_str(": ");
                s.push_str(&e.to_string());
                src = e.source();
            }
            s
        }
    }
}

/// Error code of a service error, if any.
pub fn error_code<E, R>(err: &aws_sdk_ec2::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_ec2::error::ProvideErrorMetadata,
{
    match err {
        aws_sdk_ec2::error::SdkError::ServiceError(se) => se.err().code().map(str::to_string),
        _ => None,
    }
}
