//! Extractors used by the generated adapter.
//!
//! Each wraps a Dropshot extractor and keeps its parameter metadata, so the emitted OpenAPI
//! document is unchanged. Two differences: inputs are validated against the contract before
//! typed deserialization, and failures are *deferred* — the extractor always succeeds and hands
//! the handler a [`Checked`] value — so a bad request still passes through the adapter's single
//! error path (request id in the body, log line, metrics) instead of escaping through Dropshot.

use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, Header, HttpError, Path,
    Query, RequestContext, ServerContext, SharedExtractor, StreamingBody, TypedBody,
};
use futures::TryStreamExt;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::validate::{Field, Location, RawParams, Violation, Violations};
use super::{ApiFailure, ServiceError};

/// An input that was extracted and validated, or the failure to answer with.
pub type Checked<T> = Result<T, ApiFailure>;

/// Implemented by the generated parameter structs (one per operation and location).
pub trait ValidateParams: DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// Where these parameters are sent.
    const LOCATION: Location;
    /// The parameters and how to read their raw text.
    const FIELDS: &'static [Field];
    /// The operation's route template (used to read path variables).
    const ROUTE: &'static str;
    /// Validates the parameters, given as a JSON object.
    fn validate_object(value: &Value, out: &mut Violations);
}

/// Implemented by the generated types that appear as JSON request bodies.
pub trait ValidateJson: DeserializeOwned + JsonSchema + Send + Sync + 'static {
    /// Validates a JSON value against the type's schema in the contract.
    fn validate_json(value: &Value, out: &mut Violations);
}

fn check_raw<T: ValidateParams>(raw: RawParams, request_id: &str) -> Result<(), ApiFailure> {
    let object = Value::Object(raw.to_object(T::FIELDS));
    let mut out = Violations::new(T::LOCATION);
    T::validate_object(&object, &mut out);
    if out.is_empty() {
        Ok(())
    } else {
        Err(ApiFailure::from_service(
            ServiceError::invalid(out.into_vec()),
            request_id,
        ))
    }
}

fn typed_failure(error: HttpError, location: Location, request_id: &str) -> ApiFailure {
    // The raw check passed, so this is a mismatch the schema does not describe (e.g. an integer
    // out of the Rust type's range); report it at the location with Dropshot's message.
    let violation = Violation {
        location,
        pointer: String::new(),
        rule: "type",
        message: error.external_message.clone(),
    };
    ApiFailure::from_service(ServiceError::invalid(vec![violation]), request_id)
}

/// Path parameters, validated.
#[derive(Debug)]
pub struct PathParams<T>(pub Checked<T>);

#[async_trait]
impl<T: ValidateParams> SharedExtractor for PathParams<T> {
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        let raw = RawParams::new(path_variables(T::ROUTE, rqctx.request.uri().path()));
        if let Err(failure) = check_raw::<T>(raw, &rqctx.request_id) {
            return Ok(Self(Err(failure)));
        }
        let typed = <Path<T> as SharedExtractor>::from_request(rqctx)
            .await
            .map(Path::into_inner)
            .map_err(|e| typed_failure(e, Location::Path, &rqctx.request_id));
        Ok(Self(typed))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Path<T> as SharedExtractor>::metadata(content_type)
    }
}

/// Matches a concrete path against a `/v1/users/{id}` template; returns the decoded variables.
fn path_variables(template: &str, path: &str) -> Vec<(String, String)> {
    template
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, p)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            let value = percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned();
            Some((name.to_owned(), value))
        })
        .collect()
}

/// Query parameters, validated.
#[derive(Debug)]
pub struct QueryParams<T>(pub Checked<T>);

#[async_trait]
impl<T: ValidateParams> SharedExtractor for QueryParams<T> {
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        let query = rqctx.request.uri().query().unwrap_or("");
        let pairs = match serde_urlencoded::from_str::<Vec<(String, String)>>(query) {
            Ok(pairs) => pairs,
            Err(e) => {
                let v = Violation {
                    location: Location::Query,
                    pointer: String::new(),
                    rule: "syntax",
                    message: format!("malformed query string: {e}"),
                };
                return Ok(Self(Err(ApiFailure::from_service(
                    ServiceError::invalid(vec![v]),
                    &rqctx.request_id,
                ))));
            }
        };
        if let Err(failure) = check_raw::<T>(RawParams::new(pairs), &rqctx.request_id) {
            return Ok(Self(Err(failure)));
        }
        let typed = <Query<T> as SharedExtractor>::from_request(rqctx)
            .await
            .map(Query::into_inner)
            .map_err(|e| typed_failure(e, Location::Query, &rqctx.request_id));
        Ok(Self(typed))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Query<T> as SharedExtractor>::metadata(content_type)
    }
}

/// Header parameters, validated.
#[derive(Debug)]
pub struct HeaderParams<T>(pub Checked<T>);

#[async_trait]
impl<T: ValidateParams> SharedExtractor for HeaderParams<T> {
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        let pairs = rqctx
            .request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if let Err(failure) = check_raw::<T>(RawParams::new(pairs), &rqctx.request_id) {
            return Ok(Self(Err(failure)));
        }
        let typed = <Header<T> as SharedExtractor>::from_request(rqctx)
            .await
            .map(Header::into_inner)
            .map_err(|e| typed_failure(e, Location::Header, &rqctx.request_id));
        Ok(Self(typed))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Header<T> as SharedExtractor>::metadata(content_type)
    }
}

/// A JSON request body: size-limited (413 before reading when `Content-Length` says so),
/// parsed, validated against the contract, then deserialized.
#[derive(Debug)]
pub struct JsonBody<T>(pub Checked<T>);

#[async_trait]
impl<T: ValidateJson> ExclusiveExtractor for JsonBody<T> {
    async fn from_request<C: ServerContext>(
        rqctx: &RequestContext<C>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, HttpError> {
        Ok(Self(read_json::<T, C>(rqctx, request).await))
    }

    fn metadata(content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(content_type)
    }
}

async fn read_json<T: ValidateJson, C: ServerContext>(
    rqctx: &RequestContext<C>,
    request: hyper::Request<dropshot::Body>,
) -> Checked<T> {
    let request_id = rqctx.request_id.as_str();
    let fail = |e: ServiceError| ApiFailure::from_service(e, request_id);
    let limit = rqctx.request_body_max_bytes();
    let headers = request.headers();

    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(fail(ServiceError::PayloadTooLarge { limit_bytes: limit }));
    }
    if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let media = ct.split(';').next().unwrap_or("").trim();
        if media != "application/json" && !media.ends_with("+json") {
            return Err(fail(ServiceError::UnsupportedMediaType {
                message: format!("expected content type application/json, got {media:?}"),
            }));
        }
    }

    let stream = StreamingBody::from_request(rqctx, request)
        .await
        .map_err(|e| ApiFailure::from_dropshot(e, request_id))?
        .into_stream();
    // The stream enforces the limit itself (for bodies without Content-Length).
    let body: Vec<u8> = stream
        .try_fold(Vec::new(), |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .map_err(|e| ApiFailure::from_dropshot(e, request_id))?;

    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        fail(ServiceError::invalid(vec![Violation {
            location: Location::Body,
            pointer: String::new(),
            rule: "json",
            message: format!("is not valid JSON: {e}"),
        }]))
    })?;

    let mut out = Violations::new(Location::Body);
    T::validate_json(&value, &mut out);
    if !out.is_empty() {
        return Err(fail(ServiceError::invalid(out.into_vec())));
    }

    serde_path_to_error::deserialize(value).map_err(|e| {
        let pointer = openapi_doc::pointer::from_segments(e.path().iter());
        fail(ServiceError::invalid(vec![Violation {
            location: Location::Body,
            pointer,
            rule: "type",
            message: e.into_inner().to_string(),
        }]))
    })
}

#[cfg(test)]
mod tests {
    use super::path_variables;

    #[test]
    fn reads_path_variables_from_the_template() {
        let vars = path_variables("/v1/users/{id}/posts/{post_id}", "/v1/users/a%20b/posts/7");
        assert_eq!(
            vars,
            vec![("id".into(), "a b".into()), ("post_id".into(), "7".into())]
        );
    }
}
