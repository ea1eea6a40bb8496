//! Where each credential comes from (a variable, a file it names, or a
//! file named in the settings), and errors that say which source was wrong.

use std::path::Path;

use super::layer::{Layer, Origin};
use super::secret;
use super::{
    Env, Flags, GithubAuth, Secret, SettingsError, API_TOKEN_ENV, GITHUB_TOKEN_ENV,
    WEBHOOK_SECRET_ENV,
};
use crate::config::Diagnostic;
use crate::triggers::WebhookSecret;

/// Turns a problem with a value into an error that names where it came from.
pub(super) struct Place<'a> {
    pub(super) file: Option<(&'a str, &'a Path)>,
}

impl Place<'_> {
    fn error(&self, origin: &Origin, message: String) -> SettingsError {
        match (origin, self.file) {
            (Origin::File(span), Some((text, path))) => SettingsError::File(
                Diagnostic::new(
                    &path.display().to_string(),
                    text,
                    span.start..span.end,
                    message,
                )
                .into(),
            ),
            (Origin::Env(var), _) => SettingsError::Env { var, message },
            (Origin::File(_), None) => SettingsError::Invalid(message),
        }
    }

    /// How a message names the source of a path setting.
    fn via(&self, origin: &Origin, key: &str) -> String {
        match (origin, self.file) {
            (Origin::Env(var), _) => (*var).to_owned(),
            (Origin::File(_), Some((_, path))) => format!("{key} in {}", path.display()),
            (Origin::File(_), None) => key.to_owned(),
        }
    }
}

pub(super) fn webhook_secret(
    layer: &Layer,
    env: &Env,
    flags: &Flags,
    at: &Place<'_>,
) -> Result<Option<WebhookSecret>, SettingsError> {
    const FILE_ENV: &str = "CAIRN_WEBHOOK_SECRET_FILE";
    let secret = if env.is_set(WEBHOOK_SECRET_ENV) {
        if env.get(FILE_ENV).is_some() {
            return Err(SettingsError::Env {
                var: WEBHOOK_SECRET_ENV,
                message: format!("set either {WEBHOOK_SECRET_ENV} or {FILE_ENV}, not both"),
            });
        }
        let value = env.get(WEBHOOK_SECRET_ENV).unwrap_or("");
        Some(WebhookSecret::new(value).map_err(|_| SettingsError::Env {
            var: WEBHOOK_SECRET_ENV,
            message: "is set but empty".into(),
        })?)
    } else if let Some(file) = &layer.secret_file {
        let via = at.via(&file.origin, "`[webhook] secret_file`");
        let text = read_secret(&file.value, "the webhook secret", &via)?;
        let Some(text) = text else {
            return Err(at.error(
                &file.origin,
                format!("the webhook secret file {} is empty", file.value.display()),
            ));
        };
        Some(
            WebhookSecret::new(text.expose())
                .map_err(|_| SettingsError::Invalid("the webhook secret is empty".into()))?,
        )
    } else {
        None
    };
    match secret {
        None if !flags.insecure_no_signature => Err(SettingsError::MissingWebhookSecret),
        secret => Ok(secret),
    }
}

fn read_secret(
    path: &Path,
    what: &'static str,
    via: &str,
) -> Result<Option<Secret>, SettingsError> {
    secret::read_secret_file(path).map_err(|source| SettingsError::SecretFile {
        what,
        via: via.to_owned(),
        path: path.to_path_buf(),
        source,
    })
}

/// The API token: `CAIRN_API_TOKEN`, or a file named by
/// `CAIRN_API_TOKEN_FILE` or `[api] token_file`; never both.
pub(super) fn api_token(
    layer: &Layer,
    env: &Env,
    at: &Place<'_>,
) -> Result<Option<Secret>, SettingsError> {
    if env.is_set(API_TOKEN_ENV) {
        if env.get("CAIRN_API_TOKEN_FILE").is_some() {
            return Err(SettingsError::Env {
                var: API_TOKEN_ENV,
                message: "set either CAIRN_API_TOKEN or CAIRN_API_TOKEN_FILE, not both".into(),
            });
        }
        let value = env.get(API_TOKEN_ENV).unwrap_or("");
        return secret::non_empty(value)
            .map(Some)
            .ok_or_else(|| SettingsError::Env {
                var: API_TOKEN_ENV,
                message: "is set but empty".into(),
            });
    }
    let Some(file) = &layer.api_token_file else {
        return Ok(None);
    };
    let via = at.via(&file.origin, "`[api] token_file`");
    match read_secret(&file.value, "the API token", &via)? {
        Some(token) => Ok(Some(token)),
        None => Err(at.error(
            &file.origin,
            format!("the API token file {} is empty", file.value.display()),
        )),
    }
}

pub(super) fn github_auth(
    layer: &Layer,
    env: &Env,
    at: &Place<'_>,
) -> Result<Option<GithubAuth>, SettingsError> {
    const FILE_ENV: &str = "CAIRN_GITHUB_TOKEN_FILE";
    let token = if env.is_set(GITHUB_TOKEN_ENV) {
        if env.get(FILE_ENV).is_some() {
            return Err(SettingsError::Env {
                var: GITHUB_TOKEN_ENV,
                message: format!("set either {GITHUB_TOKEN_ENV} or {FILE_ENV}, not both"),
            });
        }
        let value = env.get(GITHUB_TOKEN_ENV).unwrap_or("");
        Some((
            secret::non_empty(value).ok_or_else(|| SettingsError::Env {
                var: GITHUB_TOKEN_ENV,
                message: "is set but empty".into(),
            })?,
            Origin::Env(GITHUB_TOKEN_ENV),
        ))
    } else if let Some(file) = &layer.token_file {
        let via = at.via(&file.origin, "`[github] token_file`");
        match read_secret(&file.value, "the GitHub token", &via)? {
            Some(token) => Some((token, file.origin.clone())),
            None => {
                return Err(at.error(
                    &file.origin,
                    format!("the GitHub token file {} is empty", file.value.display()),
                ))
            }
        }
    } else {
        None
    };
    let app = match (&layer.app_id, &layer.app_key_file) {
        (None, None) => None,
        (Some(id), None) => {
            return Err(at.error(
                &id.origin,
                "a GitHub App needs its private key too: set `[github] app_key_file` or \
                 CAIRN_GITHUB_APP_KEY_FILE"
                    .into(),
            ))
        }
        (None, Some(key)) => {
            return Err(at.error(
                &key.origin,
                "a GitHub App key needs the App's id too: set `[github] app_id` or \
                 CAIRN_GITHUB_APP_ID"
                    .into(),
            ))
        }
        (Some(id), Some(key)) => {
            let via = at.via(&key.origin, "`[github] app_key_file`");
            let private_key = read_secret(&key.value, "the GitHub App key", &via)?
                .filter(|k| k.expose().contains("-----BEGIN"))
                .ok_or_else(|| {
                    at.error(
                        &key.origin,
                        format!(
                            "{} does not hold a PEM private key (download one from the App's \
                             settings page)",
                            key.value.display()
                        ),
                    )
                })?;
            Some((
                GithubAuth::App {
                    app_id: id.value,
                    key_file: key.value.clone(),
                    private_key,
                },
                id.origin.clone(),
            ))
        }
    };
    match (token, app) {
        (Some((_, origin)), Some(_)) => Err(at.error(
            &origin,
            "both a GitHub token and a GitHub App are configured: keep one".into(),
        )),
        (Some((token, _)), None) => Ok(Some(GithubAuth::Token(token))),
        (None, Some((app, _))) => Ok(Some(app)),
        (None, None) => Ok(None),
    }
}
