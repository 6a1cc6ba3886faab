//! Success responses that are not JSON (Prometheus text, the YAML contract, CORS preflights).

use dropshot::{ApiEndpointResponse, Body, HttpError, HttpResponse};
use http::{HeaderMap, StatusCode};

use super::ApiFailure;

/// What a generated handler returns: the success response `T`, or a failure written with all
/// its headers, plus headers every answer carries (CORS). The OpenAPI document describes `T`
/// (errors are described by the error type).
#[derive(Debug)]
pub struct Reply<T> {
    result: Result<T, ApiFailure>,
    headers: HeaderMap,
}

impl<T> Reply<T> {
    /// `result`, with `headers` added to the response whichever way it went.
    pub fn new(result: Result<T, ApiFailure>, headers: HeaderMap) -> Self {
        Self { result, headers }
    }

    /// The outcome.
    pub fn result(&self) -> &Result<T, ApiFailure> {
        &self.result
    }
}

impl<T: HttpResponse> HttpResponse for Reply<T> {
    fn to_result(self) -> Result<http::Response<Body>, HttpError> {
        let mut response = match self.result {
            Ok(success) => success.to_result()?,
            Err(failure) => failure.into_response()?,
        };
        response.headers_mut().extend(self.headers);
        Ok(response)
    }

    fn response_metadata() -> ApiEndpointResponse {
        T::response_metadata()
    }

    fn status_code(&self) -> StatusCode {
        match &self.result {
            Ok(success) => success.status_code(),
            Err(failure) => failure.status,
        }
    }
}

/// A 200 response with a text body and a content type fixed by the contract. Dropshot's own
/// `FreeformBody` always says `application/octet-stream`; this says what the contract says.
#[derive(Debug)]
pub struct TextResponse {
    content_type: &'static str,
    body: String,
}

impl TextResponse {
    /// A response of `content_type` (as written in the contract, e.g. `text/plain`).
    pub fn new(content_type: &'static str, body: String) -> Self {
        Self { content_type, body }
    }
}

impl HttpResponse for TextResponse {
    fn to_result(self) -> Result<http::Response<Body>, HttpError> {
        let content_type = if self.content_type.contains("charset") {
            self.content_type.to_owned()
        } else {
            format!("{}; charset=utf-8", self.content_type)
        };
        Ok(http::Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(self.body.into())?)
    }

    fn response_metadata() -> ApiEndpointResponse {
        ApiEndpointResponse {
            schema: None,
            headers: vec![],
            success: Some(StatusCode::OK),
            description: Some("successful operation".to_owned()),
        }
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::OK
    }
}

/// The 204 answer to `OPTIONS`: a CORS preflight grant, or `Allow` for a plain `OPTIONS`.
#[derive(Debug)]
pub struct Preflight(pub HeaderMap);

impl HttpResponse for Preflight {
    fn to_result(self) -> Result<http::Response<Body>, HttpError> {
        let mut response = http::Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())?;
        *response.headers_mut() = self.0;
        Ok(response)
    }

    fn response_metadata() -> ApiEndpointResponse {
        ApiEndpointResponse {
            schema: None,
            headers: vec![],
            success: Some(StatusCode::NO_CONTENT),
            description: Some("the methods and headers this route allows".to_owned()),
        }
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::NO_CONTENT
    }
}
