//! Compile errors of the derives point at the offending attribute or type.

#[test]
fn derive_errors_point_at_the_offending_attribute() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
