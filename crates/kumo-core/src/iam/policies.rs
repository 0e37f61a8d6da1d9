//! Managed policies (customer and AWS's), and the inline and attached
//! policies users and roles hold.

use std::collections::{BTreeMap, HashMap};

use super::model::{Change, ManagedPolicy, name_key};
use super::page::{Page, paginate};
use super::state::{IamState, Outcome};
use super::{IamError, RandomSource, ids, validate};
use crate::policy::PolicyKind;

/// Managed policies' size quota (non-whitespace characters).
pub const MANAGED_POLICY_SIZE: usize = 6144;
/// Managed policies one user or role may have attached.
pub const ATTACHED_POLICIES_PER_HOLDER: usize = 10;

/// Which policies ListPolicies returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyScope {
    All,
    /// AWS managed only.
    Aws,
    /// Customer managed only.
    Local,
}

impl PolicyScope {
    pub fn parse(s: &str) -> Option<PolicyScope> {
        match s {
            "All" => Some(PolicyScope::All),
            "AWS" => Some(PolicyScope::Aws),
            "Local" => Some(PolicyScope::Local),
            _ => None,
        }
    }
}

/// Who holds inline and attached policies; IAM's limits and messages differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    User,
    Role,
}

impl Holder {
    fn word(self) -> &'static str {
        match self {
            Holder::User => "user",
            Holder::Role => "role",
        }
    }

    /// Total size of one holder's inline policies.
    fn inline_quota(self) -> usize {
        match self {
            Holder::User => 2048,
            Holder::Role => 10_240,
        }
    }

    fn attached_quota_name(self) -> &'static str {
        match self {
            Holder::User => "PoliciesPerUser",
            Holder::Role => "PoliciesPerRole",
        }
    }
}

/// The inline policies after putting `name` (validated, within the holder's quota).
pub(crate) fn put_inline(
    holder: Holder,
    holder_name: &str,
    inline: &BTreeMap<String, String>,
    name: &str,
    document: &str,
) -> Result<BTreeMap<String, String>, IamError> {
    validate::policy_name(name)?;
    validate::policy_document("policyDocument", document, PolicyKind::Identity)?;
    let mut next = inline.clone();
    next.insert(name.to_string(), document.to_string());
    let total: usize = next.values().map(|d| validate::policy_size(d)).sum();
    if total > holder.inline_quota() {
        return Err(IamError::limit(format!(
            "Maximum policy size of {} bytes exceeded for {} {holder_name}",
            holder.inline_quota(),
            holder.word()
        )));
    }
    Ok(next)
}

fn inline_not_found(holder: Holder, name: &str) -> IamError {
    IamError::no_such(format!("The {} policy with name {name} cannot be found.", holder.word()))
}

pub(crate) fn get_inline<'a>(
    holder: Holder,
    inline: &'a BTreeMap<String, String>,
    name: &str,
) -> Result<&'a str, IamError> {
    inline.get(name).map(String::as_str).ok_or_else(|| inline_not_found(holder, name))
}

pub(crate) fn delete_inline(
    holder: Holder,
    inline: &BTreeMap<String, String>,
    name: &str,
) -> Result<BTreeMap<String, String>, IamError> {
    let mut next = inline.clone();
    next.remove(name).ok_or_else(|| inline_not_found(holder, name))?;
    Ok(next)
}

pub(crate) fn list_inline(
    inline: &BTreeMap<String, String>,
    marker: Option<&str>,
    max_items: Option<i64>,
) -> Result<Page<String>, IamError> {
    paginate(inline.keys().map(|k| (k.clone(), k.clone())).collect(), marker, max_items)
}

impl IamState {
    /// The attached list after attaching `arn` (attaching twice changes nothing, as in IAM).
    pub(crate) fn attach(&self, holder: Holder, attached: &[String], arn: &str) -> Result<Vec<String>, IamError> {
        validate::policy_arn(arn)?;
        let policy = self
            .policy(arn)
            .ok_or_else(|| IamError::no_such(format!("Policy {arn} does not exist or is not attachable.")))?;
        if attached.iter().any(|a| a == &policy.arn) {
            return Ok(attached.to_vec());
        }
        if attached.len() >= ATTACHED_POLICIES_PER_HOLDER {
            return Err(IamError::limit(format!(
                "Cannot exceed quota for {}: {ATTACHED_POLICIES_PER_HOLDER}",
                holder.attached_quota_name()
            )));
        }
        let mut next = attached.to_vec();
        next.push(policy.arn.clone());
        Ok(next)
    }

    pub(crate) fn detach(&self, attached: &[String], arn: &str) -> Result<Vec<String>, IamError> {
        validate::policy_arn(arn)?;
        let before = attached.len();
        let next: Vec<String> = attached.iter().filter(|a| !a.eq_ignore_ascii_case(arn)).cloned().collect();
        if next.len() == before {
            return Err(IamError::no_such(format!("Policy {arn} was not found.")));
        }
        Ok(next)
    }

    /// (PolicyName, PolicyArn) of attached policies, filtered by path prefix.
    pub(crate) fn list_attached(
        &self,
        attached: &[String],
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<(String, String)>, IamError> {
        if let Some(prefix) = path_prefix {
            validate::path_prefix(prefix)?;
        }
        let mut items: Vec<(String, (String, String))> = attached
            .iter()
            .filter_map(|arn| self.policy(arn))
            .filter(|p| path_prefix.is_none_or(|pre| p.path.starts_with(pre)))
            .map(|p| (sort_key(p), (p.name.clone(), p.arn.clone())))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        paginate(items, marker, max_items)
    }

    /// How many users and roles have `arn` attached.
    pub fn attachment_count(&self, arn: &str) -> usize {
        self.attachment_counts().get(arn).copied().unwrap_or(0)
    }

    fn attachment_counts(&self) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        let lists =
            self.users.values().map(|u| &u.attached_policies).chain(self.roles.values().map(|r| &r.attached_policies));
        for list in lists {
            for arn in list {
                *counts.entry(arn.as_str()).or_insert(0) += 1;
            }
        }
        counts
    }

    pub fn create_policy(
        &self,
        name: &str,
        path: Option<&str>,
        document: &str,
        description: Option<&str>,
        now_ms: i64,
        random: &mut dyn RandomSource,
    ) -> Result<Outcome<ManagedPolicy>, IamError> {
        validate::policy_name(name)?;
        let path = path.unwrap_or("/");
        validate::path(path)?;
        if let Some(d) = description {
            validate::description(d)?;
        }
        validate::policy_document("policyDocument", document, PolicyKind::Identity)?;
        if validate::policy_size(document) > MANAGED_POLICY_SIZE {
            return Err(IamError::limit(format!("Cannot exceed quota for PolicySize: {MANAGED_POLICY_SIZE}")));
        }
        if self.policies.contains_key(&name_key(name)) {
            return Err(IamError::exists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            )));
        }
        let policy = ManagedPolicy {
            name: name.to_string(),
            path: path.to_string(),
            id: ids::unique_id(ids::POLICY_ID_PREFIX, random),
            arn: ids::policy_arn(self.account(), path, name),
            created_ms: now_ms,
            updated_ms: now_ms,
            description: description.filter(|d| !d.is_empty()).map(str::to_string),
            document: document.to_string(),
        };
        Ok(Outcome::new(policy.clone(), vec![Change::PutPolicy(policy)]))
    }

    pub fn get_policy(&self, arn: &str) -> Result<&ManagedPolicy, IamError> {
        validate::policy_arn(arn)?;
        self.policy(arn).ok_or_else(|| IamError::no_such(format!("Policy {arn} was not found.")))
    }

    /// The document of a policy version (Kumo keeps `v1` only).
    pub fn get_policy_version(&self, arn: &str, version: &str) -> Result<&ManagedPolicy, IamError> {
        let policy = self.get_policy(arn)?;
        if version != ManagedPolicy::DEFAULT_VERSION {
            return Err(IamError::no_such(format!(
                "Policy {arn} version {version} does not exist or is not attachable."
            )));
        }
        Ok(policy)
    }

    pub fn delete_policy(&self, arn: &str) -> Result<Outcome<()>, IamError> {
        let policy = self.get_policy(arn)?;
        if policy.is_aws_managed() {
            return Err(IamError::new(
                super::IamErrorCode::InvalidInput,
                format!("ARN {arn} is not valid: AWS managed policies cannot be deleted."),
            ));
        }
        if self.attachment_count(&policy.arn) > 0 {
            return Err(IamError::conflict("Cannot delete a policy attached to entities."));
        }
        Ok(Outcome::new((), vec![Change::DeletePolicy(policy.name.clone())]))
    }

    /// ListPolicies: (policy, attachment count), sorted by name.
    pub fn list_policies(
        &self,
        scope: PolicyScope,
        only_attached: bool,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<(ManagedPolicy, usize)>, IamError> {
        if let Some(prefix) = path_prefix {
            validate::path_prefix(prefix)?;
        }
        let counts = self.attachment_counts();
        let aws = self.aws_policies.values().filter(|_| scope != PolicyScope::Local);
        let local = self.policies.values().filter(|_| scope != PolicyScope::Aws);
        let mut items: Vec<(String, (ManagedPolicy, usize))> = aws
            .chain(local)
            .map(|p| (p, counts.get(p.arn.as_str()).copied().unwrap_or(0)))
            .filter(|(p, n)| (!only_attached || *n > 0) && path_prefix.is_none_or(|pre| p.path.starts_with(pre)))
            .map(|(p, n)| (sort_key(p), (p.clone(), n)))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        paginate(items, marker, max_items)
    }
}

/// Lists of policies sort by name; the ARN breaks ties between an AWS and a
/// customer policy of one name.
fn sort_key(p: &ManagedPolicy) -> String {
    format!("{}/{}", name_key(&p.name), p.arn)
}

/// A stable id for a built-in policy, derived from its name (FNV-1a, base 32).
fn builtin_id(name: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut id = String::from(ids::POLICY_ID_PREFIX);
    for i in 0..17u32 {
        let bits = hash.rotate_left(i * 5) ^ u64::from(i).wrapping_mul(0x9E37_79B9);
        id.push(ALPHABET[(bits & 31) as usize] as char);
    }
    id
}

/// 2015-02-06T18:39:46Z: when AWS managed policies first appeared.
const AWS_POLICY_DATE_MS: i64 = 1_423_247_986_000;

/// The AWS managed policies Kumo knows: the ones Lambda users attach, with
/// documents scoped to what Kumo serves (Lambda, CloudWatch Logs, IAM, STS).
pub fn aws_managed_policies() -> Vec<ManagedPolicy> {
    const BUILTIN: &[(&str, &str, &str, &str)] = &[
        (
            "/",
            "AdministratorAccess",
            "Provides full access to AWS services and resources.",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        ),
        (
            "/",
            "ReadOnlyAccess",
            "Provides read-only access to AWS services and resources.",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["lambda:Get*","lambda:List*","logs:Describe*","logs:Get*","logs:FilterLogEvents","iam:Get*","iam:List*"],"Resource":"*"}]}"#,
        ),
        (
            "/",
            "IAMFullAccess",
            "Provides full access to IAM via the AWS Management Console.",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:*","Resource":"*"}]}"#,
        ),
        (
            "/",
            "IAMReadOnlyAccess",
            "Provides read only access to IAM via the AWS Management Console.",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iam:Get*","iam:List*"],"Resource":"*"}]}"#,
        ),
        (
            "/",
            "AWSLambda_FullAccess",
            "Grants full access to AWS Lambda service, AWS Lambda console features, and other related AWS services.",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["lambda:*","logs:Describe*","logs:Get*","logs:FilterLogEvents","iam:GetRole","iam:GetPolicy","iam:GetPolicyVersion","iam:GetRolePolicy","iam:ListAttachedRolePolicies","iam:ListRolePolicies","iam:ListRoles"],"Resource":"*"},{"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"lambda.amazonaws.com"}}}]}"#,
        ),
        (
            "/",
            "AWSLambda_ReadOnlyAccess",
            "Grants read-only access to AWS Lambda service, AWS Lambda console features, and other related AWS services.",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["lambda:Get*","lambda:List*","logs:Describe*","logs:Get*","logs:FilterLogEvents","iam:GetPolicy","iam:GetPolicyVersion","iam:GetRole","iam:GetRolePolicy","iam:ListAttachedRolePolicies","iam:ListRolePolicies","iam:ListRoles"],"Resource":"*"}]}"#,
        ),
        (
            "/service-role/",
            "AWSLambdaBasicExecutionRole",
            "Provides write permissions to CloudWatch Logs.",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}"#,
        ),
        (
            "/service-role/",
            "AWSLambdaRole",
            "Default policy for AWS Lambda service role.",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["lambda:InvokeFunction"],"Resource":["*"]}]}"#,
        ),
    ];
    BUILTIN
        .iter()
        .map(|(path, name, description, document)| ManagedPolicy {
            name: name.to_string(),
            path: path.to_string(),
            id: builtin_id(name),
            arn: ids::policy_arn("aws", path, name),
            created_ms: AWS_POLICY_DATE_MS,
            updated_ms: AWS_POLICY_DATE_MS,
            description: Some(description.to_string()),
            document: document.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{CountingRandom, IamErrorCode};
    use super::*;

    const DOC: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":"*"}]}"#;

    #[test]
    fn builtin_policies_are_valid_and_distinct() {
        let all = aws_managed_policies();
        for p in &all {
            assert!(validate::validate_policy_document(&p.document, PolicyKind::Identity).is_ok(), "{}", p.name);
            assert!(p.is_aws_managed());
            assert_eq!(p.id.len(), 21);
        }
        let mut ids: Vec<_> = all.iter().map(|p| p.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        assert!(all.iter().any(|p| p.arn == "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"));
    }

    #[test]
    fn customer_policies_lifecycle() -> Result<(), IamError> {
        let mut state = IamState::new("123456789012");
        let mut r = CountingRandom(3);
        let p = state.commit(state.create_policy("invoke", Some("/team/"), DOC, Some("d"), 1000, &mut r)?);
        assert_eq!(p.arn, "arn:aws:iam::123456789012:policy/team/invoke");
        assert!(p.id.starts_with("ANPA"));
        assert!(!p.is_aws_managed());
        let dup = state.create_policy("INVOKE", None, DOC, None, 1000, &mut r).err();
        assert_eq!(
            dup.map(|e| (e.code, e.message)),
            Some((
                IamErrorCode::EntityAlreadyExists,
                "A policy called INVOKE already exists. Duplicate names are not allowed.".into()
            ))
        );
        assert_eq!(state.get_policy(&p.arn)?.name, "invoke");
        assert_eq!(state.get_policy_version(&p.arn, "v1")?.document, DOC);
        assert_eq!(state.get_policy_version(&p.arn, "v2").err().map(|e| e.code), Some(IamErrorCode::NoSuchEntity));
        let missing = state.get_policy("arn:aws:iam::123456789012:policy/nope").err();
        assert_eq!(
            missing.map(|e| (e.code, e.message)),
            Some((IamErrorCode::NoSuchEntity, "Policy arn:aws:iam::123456789012:policy/nope was not found.".into()))
        );
        // The wrong path does not find it.
        assert!(state.get_policy("arn:aws:iam::123456789012:policy/invoke").is_err());
        let malformed = state.create_policy("bad", None, r#"{"Statement":[]}"#, None, 0, &mut r).err();
        assert_eq!(malformed.map(|e| e.code), Some(IamErrorCode::MalformedPolicyDocument));
        let big = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":[{}]}}]}}"#,
            (0..400).map(|i| format!("\"arn:aws:lambda:us-east-1:1:function:f{i}\"")).collect::<Vec<_>>().join(",")
        );
        let too_big = state.create_policy("big", None, &big, None, 0, &mut r).err();
        assert_eq!(
            too_big.map(|e| (e.code, e.message)),
            Some((IamErrorCode::LimitExceeded, "Cannot exceed quota for PolicySize: 6144".into()))
        );
        state.commit(state.delete_policy(&p.arn)?);
        assert!(state.policy(&p.arn).is_none());
        Ok(())
    }

    #[test]
    fn listing_policies_by_scope_and_page() -> Result<(), IamError> {
        let mut state = IamState::new("123456789012");
        let mut r = CountingRandom(4);
        state.commit(state.create_policy("AAA-mine", None, DOC, None, 0, &mut r)?);
        let local = state.list_policies(PolicyScope::Local, false, None, None, None)?;
        assert_eq!(local.items.len(), 1);
        let aws = state.list_policies(PolicyScope::Aws, false, None, None, None)?;
        assert_eq!(aws.items.len(), aws_managed_policies().len());
        let all = state.list_policies(PolicyScope::All, false, None, None, None)?;
        assert_eq!(all.items.len(), aws.items.len() + 1);
        assert_eq!(all.items[0].0.name, "AAA-mine");
        let mut seen = Vec::new();
        let mut marker = None;
        loop {
            let page = state.list_policies(PolicyScope::All, false, None, marker.as_deref(), Some(3))?;
            seen.extend(page.items.into_iter().map(|(p, _)| p.arn));
            marker = page.next_marker;
            if marker.is_none() {
                break;
            }
        }
        assert_eq!(seen.len(), all.items.len());
        assert!(state.list_policies(PolicyScope::All, true, None, None, None)?.items.is_empty());
        let service_role = state.list_policies(PolicyScope::All, false, Some("/service-role/"), None, None)?;
        assert_eq!(service_role.items.len(), 2);
        Ok(())
    }

    #[test]
    fn a_holder_has_ten_attached_policies_at_most() -> Result<(), IamError> {
        let mut state = IamState::new("123456789012");
        let mut r = CountingRandom(9);
        state.commit(state.create_user("dev", None, 0, &mut r)?);
        for i in 0..ATTACHED_POLICIES_PER_HOLDER {
            let p = state.commit(state.create_policy(&format!("p{i}"), None, DOC, None, 0, &mut r)?);
            state.commit(state.attach_user_policy("dev", &p.arn)?);
        }
        let extra = state.commit(state.create_policy("extra", None, DOC, None, 0, &mut r)?);
        let e = state.attach_user_policy("dev", &extra.arn).err();
        assert_eq!(
            e.map(|e| (e.code, e.message)),
            Some((IamErrorCode::LimitExceeded, "Cannot exceed quota for PoliciesPerUser: 10".into()))
        );
        let bad = state.attach_user_policy("dev", "arn:aws:iam::123456789012:role/r").err();
        assert_eq!(bad.map(|e| e.code), Some(IamErrorCode::InvalidInput));
        Ok(())
    }

    #[test]
    fn aws_policies_cannot_be_deleted() {
        let state = IamState::new("123456789012");
        let e = state.delete_policy("arn:aws:iam::aws:policy/AdministratorAccess").err();
        assert_eq!(e.map(|e| e.code), Some(IamErrorCode::InvalidInput));
    }
}
