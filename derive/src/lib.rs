//! `#[derive(Model)]`, `#[derive(Choice)]`, `#[odm::test]` and the folder
//! form of `embed_migrations!` for odm; use them through the `odm` crate
//! (`odm::Model`, `odm::Choice`, `odm::test`, `odm::embed_migrations!`).
#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod attrs;
mod choice;
mod embed;
mod model;
mod test_attr;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Maps a struct to a table. See `odm::Model` for the attributes.
///
/// Model attributes: `#[odm(table = "...", bind = "label", create_sql = "...", drop_sql = "...")]`.
/// Field attributes: `primary_key`, `max_length = n`, `default = "sql"`,
/// `unique`, `index`, `column = "name"`, `foreign_key = "table.column"`,
/// `json`, `choices = "a,b,c"`, `parent`, `default_fn = "path::to::fn"` (on an
/// `Option<T>` field: `fn() -> T` is called per object on `add`/`add_all`
/// when the field is `None`; a set value is kept).
#[proc_macro_derive(Model, attributes(odm))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    model::expand(input)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// Stores a fieldless enum in one column: its integer discriminant, or its
/// variant name with `#[odm(text)]` on the enum.
#[proc_macro_derive(Choice, attributes(odm))]
pub fn derive_choice(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    choice::expand(input)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// The migrations of a folder, read at compile time: what
/// `odm::embed_migrations!("folder")` expands to (use that; this takes
/// odm's path first).
#[doc(hidden)]
#[proc_macro]
pub fn embed_dir(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as embed::EmbedDir);
    embed::expand(input)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}

/// A test run on a green worker with a fresh database; see `odm::test`.
#[proc_macro_attribute]
pub fn test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = parse_macro_input!(attr as test_attr::TestOptions);
    let function = parse_macro_input!(item as syn::ItemFn);
    test_attr::expand(options, function)
        .unwrap_or_else(|e| e.to_compile_error())
        .into()
}
