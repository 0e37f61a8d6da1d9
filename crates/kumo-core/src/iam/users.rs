//! Users, their access keys and their policies.

use super::model::{AccessKey, AccessKeyStatus, Change, User, name_key};
use super::page::{Page, paginate};
use super::policies::{self, Holder};
use super::state::{IamState, Outcome};
use super::{IamError, RandomSource, ids, validate};

/// Access keys one user may have (active or not).
pub const ACCESS_KEYS_PER_USER: usize = 2;

impl IamState {
    pub fn create_user(
        &self,
        name: &str,
        path: Option<&str>,
        now_ms: i64,
        random: &mut dyn RandomSource,
    ) -> Result<Outcome<User>, IamError> {
        validate::user_name(name)?;
        let path = path.unwrap_or("/");
        validate::path(path)?;
        if self.user(name).is_some() {
            return Err(IamError::exists(format!("User with name {name} already exists.")));
        }
        let user = User {
            name: name.to_string(),
            path: path.to_string(),
            id: ids::unique_id(ids::USER_ID_PREFIX, random),
            arn: ids::user_arn(self.account(), path, name),
            created_ms: now_ms,
            inline_policies: Default::default(),
            attached_policies: Vec::new(),
        };
        Ok(Outcome::new(user.clone(), vec![Change::PutUser(user)]))
    }

    pub fn get_user(&self, name: &str) -> Result<&User, IamError> {
        validate::user_name(name)?;
        self.require_user(name)
    }

    /// Refused while the user still has access keys or policies, as IAM does.
    pub fn delete_user(&self, name: &str) -> Result<Outcome<()>, IamError> {
        let user = self.get_user(name)?;
        if self.access_keys.values().any(|k| name_key(&k.user_name) == name_key(&user.name)) {
            return Err(IamError::conflict("Cannot delete entity, must delete access keys first."));
        }
        if !user.inline_policies.is_empty() {
            return Err(IamError::conflict("Cannot delete entity, must delete policies first."));
        }
        if !user.attached_policies.is_empty() {
            return Err(IamError::conflict("Cannot delete entity, must detach all policies first."));
        }
        Ok(Outcome::new((), vec![Change::DeleteUser(user.name.clone())]))
    }

    pub fn list_users(
        &self,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<User>, IamError> {
        if let Some(prefix) = path_prefix {
            validate::path_prefix(prefix)?;
        }
        let items = self
            .users
            .iter()
            .filter(|(_, u)| path_prefix.is_none_or(|p| u.path.starts_with(p)))
            .map(|(k, u)| (k.clone(), u.clone()))
            .collect();
        paginate(items, marker, max_items)
    }

    pub fn create_access_key(
        &self,
        user_name: &str,
        now_ms: i64,
        random: &mut dyn RandomSource,
    ) -> Result<Outcome<AccessKey>, IamError> {
        let user = self.get_user(user_name)?;
        let owned = self.keys_of(&user.name).count();
        if owned >= ACCESS_KEYS_PER_USER {
            return Err(IamError::limit(format!("Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}")));
        }
        let key = AccessKey {
            id: ids::access_key_id(ids::ACCESS_KEY_PREFIX, random),
            secret: ids::secret_access_key(random),
            user_name: user.name.clone(),
            status: AccessKeyStatus::Active,
            created_ms: now_ms,
        };
        Ok(Outcome::new(key.clone(), vec![Change::PutAccessKey(key)]))
    }

    fn keys_of<'a>(&'a self, user_name: &'a str) -> impl Iterator<Item = &'a AccessKey> + 'a {
        self.access_keys.values().filter(move |k| name_key(&k.user_name) == name_key(user_name))
    }

    /// The key `id` of `user_name`; another user's key is as unknown as a missing one.
    fn key_of(&self, user_name: &str, id: &str) -> Result<&AccessKey, IamError> {
        let user = self.get_user(user_name)?;
        self.access_keys
            .get(id)
            .filter(|k| name_key(&k.user_name) == name_key(&user.name))
            .ok_or_else(|| IamError::no_such(format!("The Access Key with id {id} cannot be found.")))
    }

    pub fn delete_access_key(&self, user_name: &str, id: &str) -> Result<Outcome<()>, IamError> {
        let key = self.key_of(user_name, id)?;
        Ok(Outcome::new((), vec![Change::DeleteAccessKey(key.id.clone())]))
    }

    pub fn update_access_key(
        &self,
        user_name: &str,
        id: &str,
        status: AccessKeyStatus,
    ) -> Result<Outcome<()>, IamError> {
        let key = self.key_of(user_name, id)?;
        let updated = AccessKey { status, ..key.clone() };
        Ok(Outcome::new((), vec![Change::PutAccessKey(updated)]))
    }

    pub fn list_access_keys(
        &self,
        user_name: &str,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<AccessKey>, IamError> {
        let user = self.get_user(user_name)?;
        let mut keys: Vec<&AccessKey> = self.keys_of(&user.name).collect();
        keys.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        let items = keys.into_iter().map(|k| (format!("{:020}/{}", k.created_ms, k.id), k.clone())).collect();
        paginate(items, marker, max_items)
    }

    fn with_user(&self, name: &str, f: impl FnOnce(&User) -> Result<User, IamError>) -> Result<Outcome<()>, IamError> {
        let user = self.get_user(name)?;
        Ok(Outcome::new((), vec![Change::PutUser(f(user)?)]))
    }

    pub fn put_user_policy(&self, user_name: &str, policy_name: &str, document: &str) -> Result<Outcome<()>, IamError> {
        self.with_user(user_name, |u| {
            let inline_policies =
                policies::put_inline(Holder::User, &u.name, &u.inline_policies, policy_name, document)?;
            Ok(User { inline_policies, ..u.clone() })
        })
    }

    pub fn get_user_policy(&self, user_name: &str, policy_name: &str) -> Result<(&User, &str), IamError> {
        validate::policy_name(policy_name)?;
        let user = self.get_user(user_name)?;
        Ok((user, policies::get_inline(Holder::User, &user.inline_policies, policy_name)?))
    }

    pub fn delete_user_policy(&self, user_name: &str, policy_name: &str) -> Result<Outcome<()>, IamError> {
        validate::policy_name(policy_name)?;
        self.with_user(user_name, |u| {
            let inline_policies = policies::delete_inline(Holder::User, &u.inline_policies, policy_name)?;
            Ok(User { inline_policies, ..u.clone() })
        })
    }

    pub fn list_user_policies(
        &self,
        user_name: &str,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<String>, IamError> {
        let user = self.get_user(user_name)?;
        policies::list_inline(&user.inline_policies, marker, max_items)
    }

    pub fn attach_user_policy(&self, user_name: &str, arn: &str) -> Result<Outcome<()>, IamError> {
        self.with_user(user_name, |u| {
            Ok(User { attached_policies: self.attach(Holder::User, &u.attached_policies, arn)?, ..u.clone() })
        })
    }

    pub fn detach_user_policy(&self, user_name: &str, arn: &str) -> Result<Outcome<()>, IamError> {
        self.with_user(user_name, |u| {
            Ok(User { attached_policies: self.detach(&u.attached_policies, arn)?, ..u.clone() })
        })
    }

    pub fn list_attached_user_policies(
        &self,
        user_name: &str,
        path_prefix: Option<&str>,
        marker: Option<&str>,
        max_items: Option<i64>,
    ) -> Result<Page<(String, String)>, IamError> {
        let user = self.get_user(user_name)?;
        self.list_attached(&user.attached_policies, path_prefix, marker, max_items)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{CountingRandom, IamErrorCode, KeyOwner};
    use super::*;

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"lambda:*","Resource":"*"}]}"#;
    const ACCT: &str = "123456789012";

    fn code<T: std::fmt::Debug>(r: Result<T, IamError>) -> (IamErrorCode, String) {
        match r {
            Err(e) => (e.code, e.message),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }

    #[test]
    fn users_are_created_once_found_without_case_and_listed_in_order() -> Result<(), IamError> {
        let mut s = IamState::new(ACCT);
        let mut r = CountingRandom(1);
        let dev = s.commit(s.create_user("dev", None, 1000, &mut r)?);
        assert_eq!(dev.arn, "arn:aws:iam::123456789012:user/dev");
        assert!(dev.id.starts_with("AIDA") && dev.id.len() == 21);
        let ops = s.commit(s.create_user("Ops", Some("/team/"), 1000, &mut r)?);
        assert_eq!(ops.arn, "arn:aws:iam::123456789012:user/team/Ops");
        assert_eq!(
            code(s.create_user("DEV", None, 0, &mut r)),
            (IamErrorCode::EntityAlreadyExists, "User with name DEV already exists.".into())
        );
        assert_eq!(s.get_user("OPS")?.name, "Ops");
        assert_eq!(
            code(s.get_user("nobody")),
            (IamErrorCode::NoSuchEntity, "The user with name nobody cannot be found.".into())
        );
        assert_eq!(code(s.create_user("a b", None, 0, &mut r)).0, IamErrorCode::ValidationError);
        assert_eq!(code(s.create_user("x", Some("team"), 0, &mut r)).0, IamErrorCode::ValidationError);
        let names: Vec<_> = s.list_users(None, None, None)?.items.into_iter().map(|u| u.name).collect();
        assert_eq!(names, vec!["dev", "Ops"]);
        assert_eq!(s.list_users(Some("/team/"), None, None)?.items.len(), 1);
        let first = s.list_users(None, None, Some(1))?;
        assert_eq!(first.next_marker.as_deref(), Some("ops"));
        Ok(())
    }

    #[test]
    fn access_keys_two_per_user_and_only_active_ones_resolve() -> Result<(), IamError> {
        let mut s = IamState::new(ACCT);
        let mut r = CountingRandom(2);
        s.commit(s.create_user("dev", None, 0, &mut r)?);
        s.commit(s.create_user("other", None, 0, &mut r)?);
        let k1 = s.commit(s.create_access_key("dev", 10, &mut r)?);
        let k2 = s.commit(s.create_access_key("dev", 20, &mut r)?);
        assert!(k1.id.starts_with("AKIA") && k1.id.len() == 20 && k1.secret.len() == 40);
        assert_ne!(k1.id, k2.id);
        assert_eq!(
            code(s.create_access_key("dev", 30, &mut r)),
            (IamErrorCode::LimitExceeded, "Cannot exceed quota for AccessKeysPerUser: 2".into())
        );
        let listed: Vec<_> = s.list_access_keys("dev", None, None)?.items.into_iter().map(|k| k.id).collect();
        assert_eq!(listed, vec![k1.id.clone(), k2.id.clone()]);
        assert!(matches!(s.resolve_key(&k1.id), Some(KeyOwner::User { user, .. }) if user.name == "dev"));
        s.commit(s.update_access_key("dev", &k1.id, AccessKeyStatus::Inactive)?);
        assert!(s.resolve_key(&k1.id).is_none());
        // Another user's key is not found through this one.
        assert_eq!(
            code(s.delete_access_key("other", &k2.id)),
            (IamErrorCode::NoSuchEntity, format!("The Access Key with id {} cannot be found.", k2.id))
        );
        assert_eq!(
            code(s.delete_user("dev")),
            (IamErrorCode::DeleteConflict, "Cannot delete entity, must delete access keys first.".into())
        );
        s.commit(s.delete_access_key("dev", &k1.id)?);
        s.commit(s.delete_access_key("dev", &k2.id)?);
        assert!(s.resolve_key(&k2.id).is_none());
        s.commit(s.delete_user("dev")?);
        assert!(s.user("dev").is_none());
        Ok(())
    }

    #[test]
    fn keys_of_a_deleted_user_do_not_resolve() -> Result<(), IamError> {
        let mut s = IamState::new(ACCT);
        let mut r = CountingRandom(5);
        s.commit(s.create_user("dev", None, 0, &mut r)?);
        let k = s.commit(s.create_access_key("dev", 0, &mut r)?);
        // Forced through apply (DeleteUser refuses while keys exist), as a stale store might hold.
        s.apply(Change::DeleteUser("dev".into()));
        assert!(s.resolve_key(&k.id).is_none());
        Ok(())
    }

    #[test]
    fn inline_and_attached_user_policies() -> Result<(), IamError> {
        let mut s = IamState::new(ACCT);
        let mut r = CountingRandom(3);
        s.commit(s.create_user("dev", None, 0, &mut r)?);
        s.commit(s.put_user_policy("dev", "invoke", DOC)?);
        assert_eq!(s.get_user_policy("dev", "invoke")?.1, DOC);
        assert_eq!(
            code(s.get_user_policy("dev", "nope")),
            (IamErrorCode::NoSuchEntity, "The user policy with name nope cannot be found.".into())
        );
        assert_eq!(
            code(s.put_user_policy("ghost", "p", DOC)),
            (IamErrorCode::NoSuchEntity, "The user with name ghost cannot be found.".into())
        );
        assert_eq!(code(s.put_user_policy("dev", "p", "{}")).0, IamErrorCode::MalformedPolicyDocument);
        assert_eq!(s.list_user_policies("dev", None, None)?.items, vec!["invoke"]);
        assert_eq!(
            code(s.delete_user("dev")),
            (IamErrorCode::DeleteConflict, "Cannot delete entity, must delete policies first.".into())
        );
        s.commit(s.delete_user_policy("dev", "invoke")?);
        let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
        s.commit(s.attach_user_policy("dev", admin)?);
        s.commit(s.attach_user_policy("dev", admin)?);
        assert_eq!(s.list_attached_user_policies("dev", None, None, None)?.items.len(), 1);
        assert_eq!(s.attachment_count(admin), 1);
        assert_eq!(
            s.user_policies("dev"),
            vec![(admin.to_string(), s.policy(admin).map(|p| p.document.clone()).unwrap_or_default())]
        );
        let missing = format!("arn:aws:iam::{ACCT}:policy/none");
        assert_eq!(
            code(s.attach_user_policy("dev", &missing)),
            (IamErrorCode::NoSuchEntity, format!("Policy {missing} does not exist or is not attachable."))
        );
        assert_eq!(
            code(s.delete_user("dev")),
            (IamErrorCode::DeleteConflict, "Cannot delete entity, must detach all policies first.".into())
        );
        assert_eq!(
            code(s.detach_user_policy("dev", "arn:aws:iam::aws:policy/ReadOnlyAccess")),
            (IamErrorCode::NoSuchEntity, "Policy arn:aws:iam::aws:policy/ReadOnlyAccess was not found.".into())
        );
        s.commit(s.detach_user_policy("dev", admin)?);
        s.commit(s.delete_user("dev")?);
        Ok(())
    }

    #[test]
    fn inline_user_policies_share_a_2048_quota() -> Result<(), IamError> {
        let mut s = IamState::new(ACCT);
        let mut r = CountingRandom(6);
        s.commit(s.create_user("dev", None, 0, &mut r)?);
        let resources: Vec<String> =
            (0..30).map(|i| format!("\"arn:aws:lambda:us-east-1:1:function:f{i:02}\"")).collect();
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"lambda:InvokeFunction","Resource":[{}]}}]}}"#,
            resources.join(",")
        );
        s.commit(s.put_user_policy("dev", "one", &doc)?);
        assert_eq!(
            code(s.put_user_policy("dev", "two", &doc)),
            (IamErrorCode::LimitExceeded, "Maximum policy size of 2048 bytes exceeded for user dev".into())
        );
        // Replacing the same policy does not count it twice.
        assert!(s.put_user_policy("dev", "one", &doc).is_ok());
        Ok(())
    }
}
