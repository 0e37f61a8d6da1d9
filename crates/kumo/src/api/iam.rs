//! IAM's query API (version 2010-05-08): users and access keys, roles,
//! managed and inline policies. Parameters are IAM's; answers are IAM's XML,
//! with policy documents percent-encoded as IAM returns them.

use kumo_core::iam::validate::required;
use kumo_core::iam::{
    AccessKey, AccessKeyStatus, IamError, IamErrorCode, ManagedPolicy, NewRole, Page, PolicyScope, Role, User,
};

use super::query::{Call, QueryResult, Xml, invalid_action, iso_date, url_encode};
use crate::engine::now_ms;
use crate::iam::IdentityKind;

pub async fn handle(call: &Call<'_>, action: &str) -> QueryResult {
    let p = call.params;
    let iam = &call.state.iam;
    let marker = p.get("Marker");
    let max_items = p.int("MaxItems", "maxItems")?;
    let path_prefix = p.get("PathPrefix");
    match action {
        "CreateUser" => {
            let name = required("userName", p.get("UserName"))?;
            let user = iam.mutate(|s, r| s.create_user(name, p.get("Path"), now_ms(), r)).await?;
            Ok(Xml::new().nest("User", |x| user_xml(x, &user)).finish())
        }
        "GetUser" => get_user(call),
        "DeleteUser" => {
            let name = required("userName", p.get("UserName"))?;
            iam.mutate(|s, _| s.delete_user(name)).await.map(|()| None)
        }
        "ListUsers" => {
            let page = iam.read(|s| s.list_users(path_prefix, marker, max_items))?;
            let mut x = Xml::new();
            x.members("Users", &page.items, user_xml).page_end(page.next_marker.as_deref());
            Ok(x.finish())
        }
        "CreateAccessKey" => {
            let name = user_or_caller(call)?;
            let key = iam.mutate(|s, r| s.create_access_key(&name, now_ms(), r)).await?;
            Ok(Xml::new()
                .nest("AccessKey", |x| {
                    x.text("UserName", &key.user_name)
                        .text("AccessKeyId", &key.id)
                        .text("Status", key.status.as_str())
                        .text("SecretAccessKey", &key.secret)
                        .text("CreateDate", &iso_date(key.created_ms));
                })
                .finish())
        }
        "DeleteAccessKey" => {
            let name = user_or_caller(call)?;
            let id = required("accessKeyId", p.get("AccessKeyId"))?;
            iam.mutate(|s, _| s.delete_access_key(&name, id)).await.map(|()| None)
        }
        "UpdateAccessKey" => {
            let name = user_or_caller(call)?;
            let id = required("accessKeyId", p.get("AccessKeyId"))?;
            let raw = required("status", p.get("Status"))?;
            let status = AccessKeyStatus::parse(raw).ok_or_else(|| {
                IamError::new(
                    IamErrorCode::ValidationError,
                    format!("1 validation error detected: Value '{raw}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"),
                )
            })?;
            iam.mutate(|s, _| s.update_access_key(&name, id, status)).await.map(|()| None)
        }
        "ListAccessKeys" => {
            let name = user_or_caller(call)?;
            let page = iam.read(|s| s.list_access_keys(&name, marker, max_items))?;
            let mut x = Xml::new();
            x.text("UserName", &name).members("AccessKeyMetadata", &page.items, key_metadata_xml);
            x.page_end(page.next_marker.as_deref());
            Ok(x.finish())
        }
        "PutUserPolicy" | "PutRolePolicy" => {
            let holder = holder_name(call, action)?;
            let policy = required("policyName", p.get("PolicyName"))?;
            let doc = required("policyDocument", p.get("PolicyDocument"))?;
            if action == "PutUserPolicy" {
                iam.mutate(|s, _| s.put_user_policy(&holder, policy, doc)).await?;
            } else {
                iam.mutate(|s, _| s.put_role_policy(&holder, policy, doc)).await?;
            }
            Ok(None)
        }
        "GetUserPolicy" | "GetRolePolicy" => {
            let holder = holder_name(call, action)?;
            let policy = required("policyName", p.get("PolicyName"))?;
            let (tag, name, doc) = if action == "GetUserPolicy" {
                iam.read(|s| {
                    s.get_user_policy(&holder, policy).map(|(u, d)| ("UserName", u.name.clone(), d.to_string()))
                })?
            } else {
                iam.read(|s| {
                    s.get_role_policy(&holder, policy).map(|(r, d)| ("RoleName", r.name.clone(), d.to_string()))
                })?
            };
            Ok(Xml::new()
                .text(tag, &name)
                .text("PolicyName", policy)
                .text("PolicyDocument", &url_encode(&doc))
                .finish())
        }
        "DeleteUserPolicy" | "DeleteRolePolicy" => {
            let holder = holder_name(call, action)?;
            let policy = required("policyName", p.get("PolicyName"))?;
            if action == "DeleteUserPolicy" {
                iam.mutate(|s, _| s.delete_user_policy(&holder, policy)).await?;
            } else {
                iam.mutate(|s, _| s.delete_role_policy(&holder, policy)).await?;
            }
            Ok(None)
        }
        "ListUserPolicies" | "ListRolePolicies" => {
            let holder = holder_name(call, action)?;
            let page = if action == "ListUserPolicies" {
                iam.read(|s| s.list_user_policies(&holder, marker, max_items))?
            } else {
                iam.read(|s| s.list_role_policies(&holder, marker, max_items))?
            };
            Ok(names_page(&page))
        }
        "AttachUserPolicy" | "AttachRolePolicy" | "DetachUserPolicy" | "DetachRolePolicy" => {
            let holder = holder_name(call, action)?;
            let arn = required("policyArn", p.get("PolicyArn"))?;
            match action {
                "AttachUserPolicy" => iam.mutate(|s, _| s.attach_user_policy(&holder, arn)).await?,
                "AttachRolePolicy" => iam.mutate(|s, _| s.attach_role_policy(&holder, arn)).await?,
                "DetachUserPolicy" => iam.mutate(|s, _| s.detach_user_policy(&holder, arn)).await?,
                _ => iam.mutate(|s, _| s.detach_role_policy(&holder, arn)).await?,
            }
            Ok(None)
        }
        "ListAttachedUserPolicies" | "ListAttachedRolePolicies" => {
            let holder = holder_name(call, action)?;
            let page = if action == "ListAttachedUserPolicies" {
                iam.read(|s| s.list_attached_user_policies(&holder, path_prefix, marker, max_items))?
            } else {
                iam.read(|s| s.list_attached_role_policies(&holder, path_prefix, marker, max_items))?
            };
            let mut x = Xml::new();
            x.members("AttachedPolicies", &page.items, |x, (name, arn)| {
                x.text("PolicyName", name).text("PolicyArn", arn);
            });
            x.page_end(page.next_marker.as_deref());
            Ok(x.finish())
        }
        "CreateRole" => {
            let new = NewRole {
                name: required("roleName", p.get("RoleName"))?,
                path: p.get("Path"),
                trust_policy: required("assumeRolePolicyDocument", p.get("AssumeRolePolicyDocument"))?,
                description: p.get("Description"),
                max_session_duration: p.int("MaxSessionDuration", "maxSessionDuration")?,
            };
            let role = iam.mutate(|s, r| s.create_role(&new, now_ms(), r)).await?;
            Ok(Xml::new().nest("Role", |x| role_xml(x, &role)).finish())
        }
        "GetRole" => {
            let name = required("roleName", p.get("RoleName"))?;
            let role = iam.read(|s| s.get_role(name).cloned())?;
            Ok(Xml::new().nest("Role", |x| role_xml(x, &role)).finish())
        }
        "DeleteRole" => {
            let name = required("roleName", p.get("RoleName"))?;
            iam.mutate(|s, _| s.delete_role(name)).await.map(|()| None)
        }
        "ListRoles" => {
            let page = iam.read(|s| s.list_roles(path_prefix, marker, max_items))?;
            let mut x = Xml::new();
            x.members("Roles", &page.items, role_xml).page_end(page.next_marker.as_deref());
            Ok(x.finish())
        }
        // Kumo has no instance profiles (there is no EC2 to use them), so a role
        // is in none; the role itself must exist, as on IAM.
        "ListInstanceProfilesForRole" => {
            let name = required("roleName", p.get("RoleName"))?;
            iam.read(|s| s.get_role(name).map(|_| ()))?;
            let mut x = Xml::new();
            x.members("InstanceProfiles", &[] as &[()], |_, _| {}).page_end(None);
            Ok(x.finish())
        }
        "UpdateAssumeRolePolicy" => {
            let name = required("roleName", p.get("RoleName"))?;
            let doc = required("policyDocument", p.get("PolicyDocument"))?;
            iam.mutate(|s, _| s.update_assume_role_policy(name, doc)).await.map(|()| None)
        }
        "CreatePolicy" => {
            let name = required("policyName", p.get("PolicyName"))?;
            let doc = required("policyDocument", p.get("PolicyDocument"))?;
            let description = p.get("Description");
            let policy = iam.mutate(|s, r| s.create_policy(name, p.get("Path"), doc, description, now_ms(), r)).await?;
            Ok(Xml::new().nest("Policy", |x| policy_xml(x, &policy, 0, true)).finish())
        }
        "GetPolicy" => {
            let arn = required("policyArn", p.get("PolicyArn"))?;
            let (policy, count) = iam.read(|s| s.get_policy(arn).map(|p| (p.clone(), s.attachment_count(&p.arn))))?;
            Ok(Xml::new().nest("Policy", |x| policy_xml(x, &policy, count, true)).finish())
        }
        "DeletePolicy" => {
            let arn = required("policyArn", p.get("PolicyArn"))?;
            iam.mutate(|s, _| s.delete_policy(arn)).await.map(|()| None)
        }
        "ListPolicies" => {
            let scope = match p.get("Scope") {
                None => PolicyScope::All,
                Some(raw) => PolicyScope::parse(raw).ok_or_else(|| {
                    IamError::new(
                        IamErrorCode::ValidationError,
                        format!("1 validation error detected: Value '{raw}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"),
                    )
                })?,
            };
            let only_attached = p.bool("OnlyAttached");
            let page = iam.read(|s| s.list_policies(scope, only_attached, path_prefix, marker, max_items))?;
            let mut x = Xml::new();
            x.members("Policies", &page.items, |x, (policy, count)| policy_xml(x, policy, *count, false));
            x.page_end(page.next_marker.as_deref());
            Ok(x.finish())
        }
        "GetPolicyVersion" => {
            let arn = required("policyArn", p.get("PolicyArn"))?;
            let version = required("versionId", p.get("VersionId"))?;
            let policy = iam.read(|s| s.get_policy_version(arn, version).cloned())?;
            Ok(Xml::new().nest("PolicyVersion", |x| version_xml(x, &policy, true)).finish())
        }
        "ListPolicyVersions" => {
            let arn = required("policyArn", p.get("PolicyArn"))?;
            let policy = iam.read(|s| s.get_policy(arn).cloned())?;
            let mut x = Xml::new();
            x.members("Versions", &[policy], |x, p| version_xml(x, p, false)).page_end(None);
            Ok(x.finish())
        }
        other => Err(invalid_action(other, "2010-05-08")),
    }
}

/// GetUser: the named user, or the caller itself (the root answers as itself).
fn get_user(call: &Call<'_>) -> QueryResult {
    let iam = &call.state.iam;
    let name = match (call.params.get("UserName"), &call.caller.kind) {
        (Some(name), _) => name.to_string(),
        (None, IdentityKind::User { name }) => name.clone(),
        (None, IdentityKind::Root) => {
            let caller = call.caller;
            return Ok(Xml::new()
                .nest("User", |x| {
                    x.text("UserId", &caller.user_id).text("Arn", &caller.arn).text("CreateDate", &iso_date(now_ms()));
                })
                .finish());
        }
        (None, IdentityKind::AssumedRole { .. }) => return Err(needs_user_name()),
    };
    let user = iam.read(|s| s.get_user(&name).cloned())?;
    Ok(Xml::new().nest("User", |x| user_xml(x, &user)).finish())
}

fn needs_user_name() -> IamError {
    IamError::new(IamErrorCode::ValidationError, "Must specify userName when calling with non-User credentials")
}

/// `UserName`, or the calling user's own name when it is left out (as IAM
/// does for access key operations).
fn user_or_caller(call: &Call<'_>) -> Result<String, IamError> {
    match (call.params.get("UserName"), &call.caller.kind) {
        (Some(name), _) => Ok(name.to_string()),
        (None, IdentityKind::User { name }) => Ok(name.clone()),
        (None, _) => Err(needs_user_name()),
    }
}

/// The user or role an inline/attached policy operation names.
fn holder_name(call: &Call<'_>, action: &str) -> Result<String, IamError> {
    let p = call.params;
    if action.contains("User") {
        required("userName", p.get("UserName")).map(str::to_string)
    } else {
        required("roleName", p.get("RoleName")).map(str::to_string)
    }
}

fn names_page(page: &Page<String>) -> Option<String> {
    let mut x = Xml::new();
    x.members("PolicyNames", &page.items, |x, name| {
        x.content(name);
    });
    x.page_end(page.next_marker.as_deref());
    x.finish()
}

fn user_xml(x: &mut Xml, u: &User) {
    x.text("Path", &u.path)
        .text("UserName", &u.name)
        .text("UserId", &u.id)
        .text("Arn", &u.arn)
        .text("CreateDate", &iso_date(u.created_ms));
}

fn key_metadata_xml(x: &mut Xml, k: &AccessKey) {
    x.text("UserName", &k.user_name)
        .text("AccessKeyId", &k.id)
        .text("Status", k.status.as_str())
        .text("CreateDate", &iso_date(k.created_ms));
}

fn role_xml(x: &mut Xml, r: &Role) {
    x.text("Path", &r.path)
        .text("RoleName", &r.name)
        .text("RoleId", &r.id)
        .text("Arn", &r.arn)
        .text("CreateDate", &iso_date(r.created_ms))
        .text("AssumeRolePolicyDocument", &url_encode(&r.trust_policy))
        .opt("Description", r.description.as_deref())
        .text("MaxSessionDuration", &r.max_session_duration.to_string());
}

fn policy_xml(x: &mut Xml, p: &ManagedPolicy, attachments: usize, with_description: bool) {
    x.text("PolicyName", &p.name)
        .text("PolicyId", &p.id)
        .text("Arn", &p.arn)
        .text("Path", &p.path)
        .text("DefaultVersionId", ManagedPolicy::DEFAULT_VERSION)
        .text("AttachmentCount", &attachments.to_string())
        .text("PermissionsBoundaryUsageCount", "0")
        .text("IsAttachable", "true")
        .opt("Description", p.description.as_deref().filter(|_| with_description))
        .text("CreateDate", &iso_date(p.created_ms))
        .text("UpdateDate", &iso_date(p.updated_ms));
}

fn version_xml(x: &mut Xml, p: &ManagedPolicy, with_document: bool) {
    if with_document {
        x.text("Document", &url_encode(&p.document));
    }
    x.text("VersionId", ManagedPolicy::DEFAULT_VERSION)
        .text("IsDefaultVersion", "true")
        .text("CreateDate", &iso_date(p.created_ms));
}
