//! `#[odm::test]`: a test run on a green worker with a fresh database.
//!
//! ```text
//! #[odm::test(migrations = "migrations", keep_on_failure)]
//! fn orders_are_stored(mp: odm::Mapper) -> odm::Result<()> { ... }
//! ```
//!
//! expands to a `#[test]` function that calls
//! `odm::test_runner::run(options, body)`, with the user's function,
//! unchanged, as `body`; the parameter's type picks what the body gets
//! (`odm::test_runner::TestArgument`). The expansion names odm as `::odm`
//! (the library name of the `green-odm` package).

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Token};

/// The attribute's options.
#[derive(Default)]
pub(crate) struct TestOptions {
    /// `migrations = "dir"`: the folder (relative to the package root)
    /// applied before the body runs.
    migrations: Option<LitStr>,
    /// `keep_on_failure`: a failed test leaves its database behind.
    keep_on_failure: bool,
}

/// One option: `name` or `name = "value"`.
struct TestOption {
    name: Ident,
    value: Option<LitStr>,
}

impl Parse for TestOption {
    fn parse(input: ParseStream<'_>) -> syn::Result<TestOption> {
        let name = input.parse()?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(TestOption { name, value })
    }
}

impl Parse for TestOptions {
    fn parse(input: ParseStream<'_>) -> syn::Result<TestOptions> {
        let mut options = TestOptions::default();
        for option in Punctuated::<TestOption, Token![,]>::parse_terminated(input)? {
            match (option.name.to_string().as_str(), option.value) {
                ("migrations", Some(dir)) => options.migrations = Some(dir),
                ("keep_on_failure", None) => options.keep_on_failure = true,
                _ => {
                    return Err(syn::Error::new(
                        option.name.span(),
                        "unknown option of #[odm::test]: expected `migrations = \"folder\"` \
                         or `keep_on_failure`",
                    ))
                }
            }
        }
        Ok(options)
    }
}

/// The `#[test]` function running `function` through odm's test runner.
pub(crate) fn expand(options: TestOptions, function: ItemFn) -> syn::Result<TokenStream> {
    let sig = &function.sig;
    if let Some(asyncness) = &sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "#[odm::test] runs a blocking body on a green worker: remove `async`",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a test function cannot be generic",
        ));
    }
    if sig.inputs.len() > 1 {
        return Err(syn::Error::new(
            sig.inputs.span(),
            "#[odm::test] gives the body one value: take one parameter (odm::Mapper, \
             odm::Engine, odm::Pool, odm::pg::Config or String, the database url) or none",
        ));
    }
    if let Some(FnArg::Receiver(receiver)) = sig.inputs.first() {
        return Err(syn::Error::new(
            receiver.span(),
            "a test function takes no `self`",
        ));
    }
    let name = &sig.ident;
    let attrs = &function.attrs;
    let vis = &function.vis;
    let body_name = Ident::new("__odm_test_body", name.span());
    let mut body = function.clone();
    body.attrs.clear();
    body.vis = syn::Visibility::Inherited;
    body.sig.ident = body_name.clone();
    let call = if sig.inputs.is_empty() {
        quote! { |(): ()| #body_name() }
    } else {
        quote! { #body_name }
    };
    let migrations = match &options.migrations {
        Some(dir) => quote_spanned! {dir.span()=>
            ::core::option::Option::Some(
                (|| ::odm::embed_migrations!(#dir)) as fn() -> ::odm::Result<::odm::Migrations>
            )
        },
        None => quote! { ::core::option::Option::None },
    };
    let keep = options.keep_on_failure;
    Ok(quote! {
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() {
            #body
            ::odm::test_runner::run(
                ::odm::test_runner::TestOptions {
                    name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                    migrations: #migrations,
                    keep_on_failure: #keep,
                },
                #call,
            )
        }
    })
}
