//! Emits the service trait, the Dropshot API trait and the adapter between them.

use std::collections::BTreeMap;

use heck::ToUpperCamelCase;
use proc_macro2::{Ident, TokenStream};
use quote::{format_ident, quote};
use serde_json::Value;
use typify::TypeSpace;

use crate::model::{FramePolicies, FramePolicy, Operation, ParamLocation, Success};
use crate::validator::Validators;
use crate::{Fail, add_type, schema_impl};

/// An operation with the Rust types of its inputs and output resolved.
pub(crate) struct Prepared {
    op: Operation,
    /// (argument name, location, type)
    params: Vec<(Ident, ParamLocation, TokenStream)>,
    body: Option<TokenStream>,
    success: Option<TokenStream>,
}

/// Resolves an operation's types and emits their schema, validator and trait impls.
pub(crate) fn prepare(
    op: &Operation,
    space: &mut TypeSpace,
    validators: &mut Validators,
    impls: &mut Vec<TokenStream>,
    idents: &BTreeMap<String, TokenStream>,
) -> Result<Prepared, Fail> {
    let camel = op.id.to_upper_camel_case();
    let mut params = Vec::new();
    for group in &op.params {
        let name = format!("{camel}{}", group.location.suffix());
        let ty = add_type(
            space,
            &group.schema,
            Some(name.clone()),
            &format!("operation {}", op.id),
        )?;
        let ident = ty.ident;
        let mut verbatim = group.schema.clone();
        if let Some(p) = &group.pagination {
            // Dropshot recognises a paginated operation by this extension on its query schema
            // and emits `x-dropshot-pagination` from its value (see dropshot's pagination.rs).
            verbatim["x-dropshot-pagination-param"] = p.clone();
        }
        impls.push(schema_impl(&ident, &name, &verbatim, false, idents));
        let vfn = format_ident!(
            "validate_{}_{}",
            op.id,
            group.location.suffix().to_lowercase()
        );
        validators.named(
            &vfn,
            &format!(
                "Validates the {} parameters of `{}`.",
                group.location.suffix().to_lowercase(),
                op.id
            ),
            &group.schema,
        );
        let location = match group.location {
            ParamLocation::Path => quote!(Path),
            ParamLocation::Query => quote!(Query),
            ParamLocation::Header => quote!(Header),
        };
        let fields = group.names.iter().map(|n| {
            let s = &group.schema["properties"][n];
            let (scalar, array) = match s.get("type").and_then(Value::as_str) {
                Some("array") => (s.pointer("/items/type").and_then(Value::as_str).unwrap_or("string"), true),
                Some(t) => (t, false),
                None => ("string", false),
            };
            let scalar = match scalar {
                "integer" => quote!(Integer),
                "number" => quote!(Number),
                "boolean" => quote!(Boolean),
                _ => quote!(String),
            };
            // Raw values are matched case-insensitively; the name stays the contract's spelling,
            // which is what the validator and the error pointer use.
            let name = n.clone();
            quote! { ::agora_api::rt::validate::Field { name: #name, scalar: ::agora_api::rt::validate::Scalar::#scalar, array: #array } }
        });
        let route = &op.path;
        impls.push(quote! {
            impl ::agora_api::rt::ValidateParams for #ident {
                const LOCATION: ::agora_api::rt::Location = ::agora_api::rt::Location::#location;
                const FIELDS: &'static [::agora_api::rt::validate::Field] = &[#(#fields),*];
                const ROUTE: &'static str = #route;
                fn validate_object(value: &::agora_api::rt::reexport::serde_json::Value, out: &mut ::agora_api::rt::Violations) {
                    validators::#vfn(value, out)
                }
            }
        });
        let arg = format_ident!(
            "{}",
            match group.location {
                ParamLocation::Path => "path",
                ParamLocation::Query => "query",
                ParamLocation::Header => "headers",
            }
        );
        params.push((arg, group.location, ident));
    }

    let body = match &op.body {
        None => None,
        Some(body) => {
            let name = format!("{camel}Body");
            let ty = add_type(space, &body.schema, Some(name.clone()), &body.pointer)?;
            let ident = ty.ident;
            if body.schema.get("$ref").is_none() {
                if !ty.own {
                    return Err(Fail::At(crate::error::At::new(
                        &body.pointer,
                        "an inline request body must be an object schema; or use a $ref",
                    )));
                }
                impls.push(schema_impl(&ident, &name, &body.schema, false, idents));
                let vfn = format_ident!("validate_{}_body", op.id);
                validators.named(
                    &vfn,
                    &format!("Validates the body of `{}`.", op.id),
                    &body.schema,
                );
                impls.push(quote! {
                    impl ::agora_api::rt::ValidateJson for #ident {
                        fn validate_json(value: &::agora_api::rt::reexport::serde_json::Value, out: &mut ::agora_api::rt::Violations) {
                            validators::#vfn(value, out)
                        }
                    }
                });
            }
            Some(ident)
        }
    };

    let success = match &op.success {
        Success::Json {
            schema, pointer, ..
        } => {
            let name = format!("{camel}Response");
            let ty = add_type(space, schema, Some(name.clone()), pointer)?;
            if schema.get("$ref").is_none() && ty.own {
                impls.push(schema_impl(&ty.ident, &name, schema, false, idents));
            }
            Some(ty.ident)
        }
        _ => None,
    };
    Ok(Prepared {
        op: op.clone(),
        params,
        body,
        success,
    })
}

fn doc_attrs(op: &Operation) -> TokenStream {
    let mut lines: Vec<String> = Vec::new();
    if let Some(s) = &op.summary {
        lines.push(s.clone());
    }
    if let Some(d) = &op.description {
        if lines.is_empty() {
            // Dropshot reads the first paragraph as the summary; keep the description out of it.
            lines.push(String::new());
        }
        lines.push(String::new());
        lines.extend(d.trim_end().lines().map(str::to_owned));
    }
    let lines = lines.iter().map(|l| {
        if l.is_empty() {
            String::new()
        } else {
            format!(" {l}")
        }
    });
    quote! { #(#[doc = #lines])* }
}

/// The service trait's docs: the operation's own, then its security and policy, so an
/// implementer sees what the adapter has already enforced before the method runs.
fn service_doc_attrs(op: &Operation) -> TokenStream {
    let docs = doc_attrs(op);
    let mut facts = vec![if op.secured {
        "requires `bearerAuth`".to_owned()
    } else {
        "public".to_owned()
    }];
    if let Some(r) = &op.policy.role {
        facts.push(format!("role `{r}`"));
    }
    if let Some(c) = &op.policy.rate_limit {
        facts.push(format!("rate limit `{c}`"));
    }
    if let Some(f) = &op.policy.feature {
        facts.push(format!("feature `{f}`"));
    }
    let line = format!(
        " Policy (enforced by the adapter before this runs): {}.",
        facts.join(", ")
    );
    quote! {
        #docs
        #[doc = ""]
        #[doc = #line]
    }
}

/// One unpublished `OPTIONS` endpoint per route with HTTP operations, answering CORS preflights
/// (DROPSHOT-NOTES §7). Dropshot wants a route's variables consumed, so the endpoint takes the
/// path parameters of the route's first operation (and ignores them: a preflight carries no
/// credentials and does no work).
fn preflights(
    ops: &[Prepared],
    api_methods: &mut Vec<TokenStream>,
    impl_methods: &mut Vec<TokenStream>,
    statics: &mut Vec<TokenStream>,
) {
    let mut routes: BTreeMap<&str, Vec<&Prepared>> = BTreeMap::new();
    for p in ops {
        if !matches!(p.op.success, Success::WebSocket) {
            routes.entry(p.op.path.as_str()).or_default().push(p);
        }
    }
    for (route, on_route) in routes {
        if on_route.iter().any(|p| p.op.method == "OPTIONS") {
            // The contract answers OPTIONS on this route itself.
            continue;
        }
        let first = on_route[0];
        let name = format_ident!("options_{}", first.op.id);
        let op_static = format_ident!("OP_OPTIONS_{}", first.op.id.to_uppercase());
        statics.push(quote! {
            static #op_static: ::agora_api::rt::Operation = ::agora_api::rt::Operation::public("cors_preflight", "OPTIONS", #route);
        });
        let methods: Vec<String> = on_route
            .iter()
            .map(|p| p.op.method.to_uppercase())
            .collect();
        let path_arg = first
            .params
            .iter()
            .find(|(_, location, _)| matches!(location, ParamLocation::Path))
            .map(|(_, _, ty)| quote!(_path: ::agora_api::rt::PathParams<#ty>,));
        let args = quote!(rqctx: ::agora_api::rt::reexport::dropshot::RequestContext<Self::Context>, #path_arg);
        api_methods.push(quote! {
            #[endpoint { method = OPTIONS, path = #route, unpublished = true }]
            async fn #name(#args) -> Result<::agora_api::rt::Reply<::agora_api::rt::Preflight>, ErrorResponse>;
        });
        impl_methods.push(quote! {
            async fn #name(#args) -> Result<::agora_api::rt::Reply<::agora_api::rt::Preflight>, ErrorResponse> {
                let call = ::agora_api::rt::Call::start(&rqctx, &#op_static);
                let result = call.preflight(&rqctx, &[#(#methods),*]);
                Ok(call.finish(result))
            }
        });
    }
}

/// `Some("…")` or `None`.
fn opt_str(v: &Option<String>) -> TokenStream {
    match v {
        Some(s) => quote!(Some(#s)),
        None => quote!(None),
    }
}

/// A `FramePolicy` value.
fn frame_policy_literal(p: &FramePolicy) -> TokenStream {
    let name = &p.name;
    let (rate_limit, feature) = (opt_str(&p.rate_limit), opt_str(&p.feature));
    quote!(::agora_api::rt::FramePolicy { name: #name, rate_limit: #rate_limit, feature: #feature })
}

/// `PolicedFrame` for a channel's client frame type: each kind of frame's `x-agora-*` policy,
/// which the frame stream enforces before the service sees the frame.
fn frame_policy_impl(client: &Ident, policies: &FramePolicies) -> TokenStream {
    let body = match policies {
        FramePolicies::Single(p) => {
            let policy = frame_policy_literal(p);
            quote!(&#policy)
        }
        FramePolicies::Variants(variants) => {
            let arms = variants.iter().map(|p| {
                let variant = format_ident!("{}", p.schema);
                let policy = frame_policy_literal(p);
                quote!(Self::#variant(_) => &#policy,)
            });
            quote!(match self { #(#arms)* })
        }
    };
    quote! {
        impl ::agora_api::rt::PolicedFrame for types::#client {
            fn policy(&self) -> &'static ::agora_api::rt::FramePolicy {
                #body
            }
        }
    }
}

/// The service trait, the Dropshot trait, the adapter and the entry points.
pub(crate) fn api(ops: &[Prepared], options: &crate::Options) -> TokenStream {
    let service = format_ident!("{}", options.service_trait);
    let api = format_ident!("{}", options.api_trait);
    let module_name = format!(
        "{}_mod",
        heck::ToSnakeCase::to_snake_case(options.api_trait.as_str())
    );
    let module = format_ident!("{module_name}");
    let adapter = format_ident!("{}Adapter", options.api_trait);

    let mut service_methods = Vec::new();
    let mut api_methods = Vec::new();
    let mut impl_methods = Vec::new();
    let mut statics = Vec::new();
    let mut operation_refs = Vec::new();
    // Client frame types whose policy is emitted (two channels may share one).
    let mut policed = std::collections::BTreeSet::new();

    for p in ops {
        let op = &p.op;
        let name = format_ident!("{}", op.id);
        let docs = doc_attrs(op);
        let op_static = format_ident!("OP_{}", op.id.to_uppercase());
        let (id, method, route, secured) = (&op.id, &op.method, &op.path, op.secured);
        let (role, rate_limit, feature) = (
            opt_str(&op.policy.role),
            opt_str(&op.policy.rate_limit),
            opt_str(&op.policy.feature),
        );
        statics.push(quote! {
            static #op_static: ::agora_api::rt::Operation = ::agora_api::rt::Operation {
                id: #id, method: #method, route: #route, secured: #secured,
                role: #role, rate_limit: #rate_limit, feature: #feature,
            };
        });
        operation_refs.push(quote!(&#op_static));
        let service_docs = service_doc_attrs(op);

        let ctx_ty = if op.secured {
            quote!(&::agora_api::rt::RequestCtx<::agora_api::rt::Principal>)
        } else {
            quote!(&::agora_api::rt::RequestCtx)
        };
        let mut svc_args = vec![quote!(ctx: #ctx_ty)];
        let mut api_args =
            vec![quote!(rqctx: ::agora_api::rt::reexport::dropshot::RequestContext<Self::Context>)];
        let mut unwraps = Vec::new();
        let mut arg_idents: Vec<TokenStream> = Vec::new();
        for (arg, location, ty) in &p.params {
            svc_args.push(quote!(#arg: #ty));
            let wrapper = match location {
                ParamLocation::Path => quote!(PathParams),
                ParamLocation::Query => quote!(QueryParams),
                ParamLocation::Header => quote!(HeaderParams),
            };
            api_args.push(quote!(#arg: ::agora_api::rt::#wrapper<#ty>));
            unwraps.push(quote!(let #arg = #arg.0?;));
            arg_idents.push(quote!(#arg));
        }
        if let Some(body) = &p.body {
            svc_args.push(quote!(body: #body));
            api_args.push(quote!(body: ::agora_api::rt::JsonBody<#body>));
            unwraps.push(quote!(let body = body.0?;));
            arg_idents.push(quote!(body));
        }
        let authenticate = if op.secured {
            quote! { let ctx = call.admit_authenticated(&rqctx).await?; }
        } else {
            quote! { let ctx = call.admit_public(&rqctx).await?; }
        };
        let tags = &op.tags;
        let deprecated = op.deprecated.then(|| quote!(deprecated = true,));

        if let Success::WebSocket = op.success {
            let (socket_ty, wrap) = match &op.frames {
                Some(frames) => {
                    let client = format_ident!("{}", frames.client);
                    let server = format_ident!("{}", frames.server);
                    if policed.insert(frames.client.clone()) {
                        statics.push(frame_policy_impl(&client, &frames.client_policy));
                    }
                    let caller = if op.secured {
                        quote!(Some(&ctx.principal))
                    } else {
                        quote!(None)
                    };
                    (
                        quote!(::agora_api::rt::FrameSocket<types::#client, types::#server>),
                        quote! {
                            let guard = api.frame_guard(#caller, ctx.client_ip);
                            let socket = ::agora_api::rt::FrameSocket::new(socket, guard);
                        },
                    )
                }
                None => (quote!(::agora_api::rt::WebSocket), quote!()),
            };
            if !op.close_codes.is_empty() {
                let module = format_ident!("{}_close_codes", op.id);
                let consts = op.close_codes.iter().map(|c| {
                    let ident = format_ident!("{}", c.name.to_uppercase());
                    let code = c.code;
                    let doc = format!("{code}: {}", c.description);
                    quote! { #[doc = #doc] pub const #ident: u16 = #code; }
                });
                let all = op.close_codes.iter().map(|c| {
                    let (code, name) = (c.code, &c.name);
                    quote!((#code, #name))
                });
                let module_doc = format!("The close codes of `{}` (`x-agora-close-codes`).", op.id);
                statics.push(quote! {
                    #[doc = #module_doc]
                    pub mod #module {
                        #(#consts)*
                        /// Every code with its name, in the contract's order.
                        pub const ALL: &[(u16, &str)] = &[#(#all),*];
                    }
                });
            }
            // A secured channel may also authenticate with its first frame (browsers cannot
            // set headers), so admission reads from the socket.
            let authenticate = if op.secured {
                quote! { let ctx = call.admit_channel(api, handshake.credentials, &mut socket).await?; }
            } else {
                quote! { let ctx = call.admit_public_in(api).await?; }
            };
            svc_args.push(quote!(socket: #socket_ty));
            service_methods.push(quote! {
                #service_docs
                fn #name(&self, #(#svc_args),*) -> impl ::std::future::Future<Output = Result<(), ::agora_api::rt::ServiceError>> + Send;
            });
            let method_ident = format_ident!("{}", method.to_uppercase());
            api_methods.push(quote! {
                #docs
                #[endpoint { method = #method_ident, path = #route, tags = [#(#tags),*], #deprecated }]
                async fn #name(#(#api_args,)* upgrade: ::agora_api::rt::reexport::dropshot::WebsocketUpgrade)
                    -> Result<::agora_api::rt::Upgrading, ::agora_api::rt::reexport::dropshot::HttpError>;
            });
            // An endpoint taking the upgrade rather than a `#[channel]` (see `rt::upgrade`):
            // the connection's future captures only what it uses, never the request.
            impl_methods.push(quote! {
                async fn #name(#(#api_args,)* upgrade: ::agora_api::rt::reexport::dropshot::WebsocketUpgrade)
                    -> Result<::agora_api::rt::Upgrading, ::agora_api::rt::reexport::dropshot::HttpError>
                {
                    use ::agora_api::rt::reexport::tracing::Instrument as _;
                    // Boxed: every connection's future holds it for the socket's whole life.
                    let mut call = Box::new(::agora_api::rt::Call::start(&rqctx, &#op_static));
                    let span = call.span();
                    #[allow(unused_variables)]
                    let handshake = ::agora_api::rt::Handshake::read(rqctx.request.headers());
                    let protocol = handshake.protocol;
                    let server = ::std::sync::Arc::clone(&rqctx.server);
                    drop(rqctx);
                    let switching = upgrade.handle(move |upgraded| async move {
                        let api = &server.private;
                        #[allow(unused_mut)]
                        // Boxed, like the refusal below: the future's state is sized by its
                        // largest await, and every connection holds that state for its life.
                        let mut socket = Box::pin(::agora_api::rt::accept_websocket(upgraded)).await;
                        // Boxed: authentication is done before the socket's long life, and
                        // inline its state would be reserved in every connection's future.
                        // Matched in the `let`: a result bound to a name would be kept (with
                        // its error's room) beside `ctx` for the socket's life.
                        let (ctx, #(#arg_idents),*) = match Box::pin(async {
                            #authenticate
                            #(#unwraps)*
                            Ok((ctx, #(#arg_idents),*))
                        }.instrument(span.clone())).await {
                            Ok(admitted) => admitted,
                            Err(failure) => return Box::pin((*call).reject_channel(socket, failure)).await,
                        };
                        #wrap
                        let outcome = api.service.#name(&ctx, #(#arg_idents,)* socket).instrument(span).await;
                        (*call).finish_channel(outcome)
                    })?;
                    Ok(::agora_api::rt::Upgrading::new(switching, protocol))
                }
            });
            continue;
        }

        let (ret, wrap, api_ret) = match (&op.success, &p.success) {
            (Success::Json { status, .. }, Some(ty)) => {
                let wrapper = match status {
                    201 => quote!(HttpResponseCreated),
                    202 => quote!(HttpResponseAccepted),
                    _ => quote!(HttpResponseOk),
                };
                (
                    quote!(#ty),
                    quote!(::agora_api::rt::reexport::dropshot::#wrapper),
                    quote!(::agora_api::rt::reexport::dropshot::#wrapper<#ty>),
                )
            }
            (Success::Text { media_type }, _) => (
                quote!(String),
                quote!(|text| ::agora_api::rt::TextResponse::new(#media_type, text)),
                quote!(::agora_api::rt::TextResponse),
            ),
            _ => (
                quote!(()),
                quote!(|()| ::agora_api::rt::reexport::dropshot::HttpResponseUpdatedNoContent()),
                quote!(::agora_api::rt::reexport::dropshot::HttpResponseUpdatedNoContent),
            ),
        };
        let method_ident = format_ident!("{}", op.method);
        let max_bytes = op.body_max_bytes.map(|n| {
            let n = n as usize;
            quote!(request_body_max_bytes = #n,)
        });
        service_methods.push(quote! {
            #service_docs
            fn #name(&self, #(#svc_args),*) -> impl ::std::future::Future<Output = Result<#ret, ::agora_api::rt::ServiceError>> + Send;
        });
        api_methods.push(quote! {
            #docs
            #[endpoint { method = #method_ident, path = #route, tags = [#(#tags),*], #deprecated #max_bytes }]
            async fn #name(#(#api_args),*) -> Result<::agora_api::rt::Reply<#api_ret>, ErrorResponse>;
        });
        impl_methods.push(quote! {
            async fn #name(#(#api_args),*) -> Result<::agora_api::rt::Reply<#api_ret>, ErrorResponse> {
                use ::agora_api::rt::reexport::tracing::Instrument as _;
                #[allow(unused_mut)]
                let mut call = ::agora_api::rt::Call::start(&rqctx, &#op_static);
                let span = call.span();
                let trace = call.trace();
                // The trace is current for the whole body: what the service publishes carries it.
                let result = trace.scope(async {
                    #authenticate
                    #(#unwraps)*
                    rqctx.context().service.#name(&ctx, #(#arg_idents),*).await.map(#wrap).map_err(|e| call.fail(e))
                }.instrument(span)).await;
                Ok(call.finish(result))
            }
        });
    }

    preflights(ops, &mut api_methods, &mut impl_methods, &mut statics);
    let names = |f: fn(&Operation) -> Option<&String>| {
        let set: std::collections::BTreeSet<&String> =
            ops.iter().filter_map(|p| f(&p.op)).collect();
        set.into_iter().cloned().collect::<Vec<String>>()
    };
    let frame_policies: Vec<(&String, &FramePolicy)> = ops
        .iter()
        .filter_map(|p| Some((&p.op.id, p.op.frames.as_ref()?)))
        .flat_map(|(id, frames)| {
            let policies = match &frames.client_policy {
                FramePolicies::Single(p) => std::slice::from_ref(p),
                FramePolicies::Variants(v) => v.as_slice(),
            };
            policies.iter().map(move |p| (id, p))
        })
        .collect();
    let with_frames = |mut ops: Vec<String>, f: fn(&FramePolicy) -> Option<&String>| {
        ops.extend(frame_policies.iter().filter_map(|(_, p)| f(p)).cloned());
        ops.sort();
        ops.dedup();
        ops
    };
    let roles = names(|o| o.policy.role.as_ref());
    let classes = with_frames(names(|o| o.policy.rate_limit.as_ref()), |p| {
        p.rate_limit.as_ref()
    });
    let features = with_frames(names(|o| o.policy.feature.as_ref()), |p| p.feature.as_ref());
    let client_frames = frame_policies.iter().map(|(id, p)| {
        let policy = frame_policy_literal(p);
        quote!((#id, #policy))
    });

    let service_doc = format!(
        "The operations of the contract, one method per `operationId`. Backend developers implement this;\n \
         the generated [`{adapter}`] does the HTTP around it (extraction, authentication, role, rate limit, feature gate,\n validation, \
         tracing, metrics, error mapping)."
    );
    quote! {
        /// The error type of every endpoint: the contract's `ApiError`.
        pub type ErrorResponse = ::agora_api::rt::ErrorResponse<types::ApiError>;

        #(#statics)*

        /// Every operation of the contract with its security and policy, in document order (the
        /// authorization sweep and the policy golden file iterate over it).
        pub static OPERATIONS: &[&::agora_api::rt::Operation] = &[#(#operation_refs),*];
        /// Every kind of client frame of every channel with its policy (`x-agora-*` on the
        /// frame's schema), by the channel's operationId, in document order.
        pub static CLIENT_FRAMES: &[(&str, ::agora_api::rt::FramePolicy)] = &[#(#client_frames),*];
        /// Every `x-agora-role` the contract uses.
        pub const ROLES: &[&str] = &[#(#roles),*];
        /// Every `x-agora-rate-limit` class the contract uses (on operations and client frames);
        /// the server must budget each one.
        pub const RATE_LIMIT_CLASSES: &[&str] = &[#(#classes),*];
        /// Every `x-agora-feature` the contract uses (on operations and client frames).
        pub const FEATURES: &[&str] = &[#(#features),*];

        #[doc = #service_doc]
        pub trait #service: Send + Sync + 'static {
            #(#service_methods)*
        }

        /// The Dropshot API, generated from the contract.
        #[::agora_api::rt::reexport::dropshot::api_description { module = #module_name }]
        pub trait #api {
            /// The server context.
            type Context;
            #(#api_methods)*
        }

        /// Implements the Dropshot API for any service; never constructed.
        pub struct #adapter<S>(::std::marker::PhantomData<fn() -> S>);

        impl<S: #service> #api for #adapter<S> {
            type Context = ::agora_api::rt::ApiContext<S>;
            #(#impl_methods)*
        }

        /// The Dropshot API description serving `S`.
        pub fn api_description<S: #service>() -> Result<
            ::agora_api::rt::reexport::dropshot::ApiDescription<::agora_api::rt::ApiContext<S>>,
            ::agora_api::rt::reexport::dropshot::ApiDescriptionBuildErrors,
        > {
            #module::api_description::<#adapter<S>>()
        }

        /// The API description without an implementation, for emitting the OpenAPI document.
        pub fn stub_api_description() -> Result<
            ::agora_api::rt::reexport::dropshot::ApiDescription<::agora_api::rt::reexport::dropshot::StubContext>,
            ::agora_api::rt::reexport::dropshot::ApiDescriptionBuildErrors,
        > {
            #module::stub_api_description()
        }
    }
}
