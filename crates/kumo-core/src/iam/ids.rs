//! Unique ids, access keys, session tokens and ARNs, as IAM and STS shape them.
//!
//! Unique ids are a four-letter prefix saying what they name (`AIDA` user,
//! `AROA` role, `ANPA` managed policy) and 17 characters of the base-32
//! alphabet: 21 characters, as AWS's are. Access key ids are `AKIA` (a user's
//! long-term key) or `ASIA` (an STS session's) and 16 more: 20 characters.

use super::RandomSource;

pub const USER_ID_PREFIX: &str = "AIDA";
pub const ROLE_ID_PREFIX: &str = "AROA";
pub const POLICY_ID_PREFIX: &str = "ANPA";
pub const ACCESS_KEY_PREFIX: &str = "AKIA";
pub const SESSION_KEY_PREFIX: &str = "ASIA";

/// Length of a session token: long enough that guessing one is hopeless.
pub const SESSION_TOKEN_LENGTH: usize = 176;

const ID_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `n` characters of `alphabet` (32 or 64 letters: a byte modulo either is unbiased).
fn draw(random: &mut dyn RandomSource, alphabet: &[u8], n: usize) -> String {
    let mut bytes = vec![0u8; n];
    random.fill(&mut bytes);
    bytes.iter().map(|b| alphabet[usize::from(*b) % alphabet.len()] as char).collect()
}

/// A unique id: `prefix` and 17 base-32 characters.
pub fn unique_id(prefix: &str, random: &mut dyn RandomSource) -> String {
    format!("{prefix}{}", draw(random, ID_ALPHABET, 17))
}

/// An access key id: `prefix` (`AKIA`, `ASIA`) and 16 base-32 characters.
pub fn access_key_id(prefix: &str, random: &mut dyn RandomSource) -> String {
    format!("{prefix}{}", draw(random, ID_ALPHABET, 16))
}

/// A 40-character secret access key.
pub fn secret_access_key(random: &mut dyn RandomSource) -> String {
    draw(random, SECRET_ALPHABET, 40)
}

/// An STS session token (base-64 characters).
pub fn session_token(random: &mut dyn RandomSource) -> String {
    draw(random, SECRET_ALPHABET, SESSION_TOKEN_LENGTH)
}

fn iam_arn(account: &str, kind: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{kind}{path}{name}")
}

pub fn user_arn(account: &str, path: &str, name: &str) -> String {
    iam_arn(account, "user", path, name)
}

pub fn role_arn(account: &str, path: &str, name: &str) -> String {
    iam_arn(account, "role", path, name)
}

/// A managed policy's ARN; AWS's own policies have the account `aws`.
pub fn policy_arn(account: &str, path: &str, name: &str) -> String {
    iam_arn(account, "policy", path, name)
}

/// A role session's ARN: the role's name without its path, and the session name.
pub fn assumed_role_arn(account: &str, role_name: &str, session_name: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}")
}

/// An IAM ARN taken apart: account, path (`/` or `/a/b/`) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamArn<'a> {
    pub account: &'a str,
    pub path: &'a str,
    pub name: &'a str,
}

/// Parses `arn:PARTITION:iam::ACCOUNT:{kind}/PATH/NAME`.
pub fn parse_iam_arn<'a>(arn: &'a str, kind: &str) -> Option<IamArn<'a>> {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", partition, "iam", "", account, resource] = fields.as_slice() else {
        return None;
    };
    if partition.is_empty() || account.is_empty() {
        return None;
    }
    let rest = resource.strip_prefix(kind)?;
    if !rest.starts_with('/') {
        return None;
    }
    let cut = rest.rfind('/')? + 1;
    let (path, name) = rest.split_at(cut);
    if name.is_empty() {
        return None;
    }
    Some(IamArn { account, path, name })
}

#[cfg(test)]
mod tests {
    use super::super::CountingRandom;
    use super::*;

    #[test]
    fn ids_have_aws_shapes() {
        let mut r = CountingRandom(1);
        let user = unique_id(USER_ID_PREFIX, &mut r);
        assert_eq!(user.len(), 21);
        assert!(user.starts_with("AIDA"));
        assert!(user.bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert!(unique_id(ROLE_ID_PREFIX, &mut r).starts_with("AROA"));
        assert!(unique_id(POLICY_ID_PREFIX, &mut r).starts_with("ANPA"));
        let key = access_key_id(ACCESS_KEY_PREFIX, &mut r);
        assert_eq!(key.len(), 20);
        assert!(key.starts_with("AKIA"));
        assert!(access_key_id(SESSION_KEY_PREFIX, &mut r).starts_with("ASIA"));
        let secret = secret_access_key(&mut r);
        assert_eq!(secret.len(), 40);
        assert!(secret.bytes().all(|b| SECRET_ALPHABET.contains(&b)));
        let token = session_token(&mut r);
        assert_eq!(token.len(), SESSION_TOKEN_LENGTH);
        assert_ne!(unique_id(USER_ID_PREFIX, &mut r), user);
    }

    #[test]
    fn arns() {
        assert_eq!(user_arn("123456789012", "/", "dev"), "arn:aws:iam::123456789012:user/dev");
        assert_eq!(role_arn("123456789012", "/svc/", "r"), "arn:aws:iam::123456789012:role/svc/r");
        assert_eq!(
            policy_arn("aws", "/service-role/", "AWSLambdaBasicExecutionRole"),
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
        );
        assert_eq!(
            assumed_role_arn("000000000000", "ROLE", "SESSION"),
            "arn:aws:sts::000000000000:assumed-role/ROLE/SESSION"
        );
    }

    #[test]
    fn parsing_iam_arns() {
        let p = parse_iam_arn("arn:aws:iam::123456789012:role/a/b/name", "role");
        assert_eq!(p, Some(IamArn { account: "123456789012", path: "/a/b/", name: "name" }));
        let p = parse_iam_arn("arn:aws:iam::aws:policy/AdministratorAccess", "policy");
        assert_eq!(p, Some(IamArn { account: "aws", path: "/", name: "AdministratorAccess" }));
        assert_eq!(parse_iam_arn("arn:aws:iam::1:role/x", "policy"), None);
        assert_eq!(parse_iam_arn("arn:aws:iam::1:role/", "role"), None);
        assert_eq!(parse_iam_arn("arn:aws:iam::1:rolex/y", "role"), None);
        assert_eq!(parse_iam_arn("arn:aws:sts::1:role/x", "role"), None);
        assert_eq!(parse_iam_arn("role/x", "role"), None);
    }
}
