//! Compile errors of the derives, of `#[odm::test]` and of
//! `embed_migrations!("folder")` point at the offending attribute, type or
//! folder.

#[test]
fn derive_errors_point_at_the_offending_attribute() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
