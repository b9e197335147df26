//! The `tls-server-end-point` channel-binding data of RFC 5929 (what
//! SCRAM-SHA-256-PLUS binds to): a hash of the server's DER certificate,
//! chosen by the hash its signature algorithm names, read with a minimal
//! DER walk (no X.509 parser for three fields).

/// RFC 5929 `tls-server-end-point`: the certificate's hash with the hash of
/// its signature algorithm, SHA-256 for MD5 and SHA-1; `None` when the
/// algorithm names no hash (Ed25519, RSA-PSS) or the certificate does not
/// parse.
pub(crate) fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest;
    let oid = signature_algorithm(cert)?;
    // DER bodies of the signature algorithm OIDs, by hash.
    const SHA256: &[&[u8]] = &[
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04], // md5WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05], // sha1WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b], // sha256WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01],             // ecdsa-with-SHA1
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],       // ecdsa-with-SHA256
        &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03],             // dsa-with-sha1
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x02], // dsa-with-sha256
    ];
    const SHA384: &[&[u8]] = &[
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], // sha384WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],       // ecdsa-with-SHA384
    ];
    const SHA512: &[&[u8]] = &[
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], // sha512WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],       // ecdsa-with-SHA512
    ];
    if SHA256.contains(&oid) {
        Some(sha2::Sha256::digest(cert).to_vec())
    } else if SHA384.contains(&oid) {
        Some(sha2::Sha384::digest(cert).to_vec())
    } else if SHA512.contains(&oid) {
        Some(sha2::Sha512::digest(cert).to_vec())
    } else {
        None
    }
}

/// The OID body of a DER certificate's `signatureAlgorithm`.
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (tag, certificate, _) = der_element(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _tbs, rest) = der_element(certificate)?;
    let (tag, algorithm, _) = der_element(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = der_element(algorithm)?;
    (tag == 0x06).then_some(oid)
}

/// One DER element: its tag, its contents and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, &b| (len << 8) | usize::from(b));
        (len, &rest[count..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_or_garbage_certificate_has_no_end_point() {
        assert_eq!(server_end_point(&[]), None);
        assert_eq!(server_end_point(&[0x30, 0x82, 0xff]), None);
        assert_eq!(server_end_point(&[0x04, 0x00]), None);
    }

    #[test]
    fn a_sha256_certificate_hashes_with_sha256() {
        use sha2::Digest;
        // SEQUENCE { SEQUENCE {} tbs, SEQUENCE { OID sha256WithRSA }, BIT STRING }
        let cert = [
            0x30, 0x12, 0x30, 0x00, 0x30, 0x0b, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
            0x01, 0x01, 0x0b, 0x03, 0x01, 0x00,
        ];
        assert_eq!(
            server_end_point(&cert),
            Some(sha2::Sha256::digest(cert).to_vec())
        );
    }

    #[test]
    fn the_end_point_of_a_p384_certificate_is_its_sha384_hash() {
        use sha2::Digest;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().to_vec();
        assert_eq!(
            server_end_point(&der),
            Some(sha2::Sha384::digest(&der).to_vec())
        );
    }

    #[test]
    fn the_end_point_of_a_p256_certificate_is_its_sha256_hash() {
        use sha2::Digest;
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        assert_eq!(
            server_end_point(&der),
            Some(sha2::Sha256::digest(&der).to_vec())
        );
    }
}
