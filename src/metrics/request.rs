//! What a user asks to tabulate, parsed once from the command line into typed values: an
//! intersection of attributes (`race*gender`) and a reference group (`race=White`).

use std::fmt;
use std::str::FromStr;

/// How records are grouped in a report: single attributes, intersections and reference groups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupingRequest {
    /// Attributes tabulated one by one; empty means every attribute of the dataset.
    pub by: Vec<String>,
    /// Intersections tabulated as well, e.g. `race*gender`.
    pub intersections: Vec<Intersection>,
    /// Reference groups for `ratio_to_reference` (default: the largest group).
    pub references: Vec<ReferenceGroup>,
    /// Family-wise significance level of the report's findings (`--alpha`, default 0.05).
    pub alpha: super::Alpha,
}

/// An intersection of two or more attributes, written `race*gender`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intersection {
    /// The attributes, in the order given.
    pub attributes: Vec<String>,
}

impl FromStr for Intersection {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let attributes: Vec<String> = text.split('*').map(|p| p.trim().to_string()).collect();
        if attributes.len() < 2 || attributes.iter().any(String::is_empty) {
            return Err(format!(
                "{text:?}: expected two or more attributes joined by `*`, e.g. race*gender"
            ));
        }
        Ok(Intersection { attributes })
    }
}

impl fmt::Display for Intersection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.attributes.join("*"))
    }
}

/// A reference group for ratios, written `race=White` (an attribute or intersection name, then
/// one of its groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceGroup {
    /// The grouping's name, e.g. `race` or `race*gender`.
    pub grouping: String,
    /// The group, e.g. `White`.
    pub group: String,
}

impl FromStr for ReferenceGroup {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once('=') {
            Some((grouping, group)) if !grouping.trim().is_empty() && !group.is_empty() => {
                Ok(ReferenceGroup {
                    grouping: grouping.trim().to_string(),
                    group: group.to_string(),
                })
            }
            _ => Err(format!("{text:?}: expected ATTR=GROUP, e.g. race=White")),
        }
    }
}

impl fmt::Display for ReferenceGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.grouping, self.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersections_and_references_parse_or_say_what_was_expected() {
        let i: Intersection = "race * gender*age".parse().unwrap();
        assert_eq!(i.attributes, ["race", "gender", "age"]);
        assert_eq!(i.to_string(), "race*gender*age");
        for bad in ["race", "race*", "*gender", ""] {
            let err = bad.parse::<Intersection>().unwrap_err();
            assert!(err.contains("two or more attributes"), "{bad}: {err}");
        }
        let r: ReferenceGroup = "race=Middle Eastern".parse().unwrap();
        assert_eq!(
            (r.grouping.as_str(), r.group.as_str()),
            ("race", "Middle Eastern")
        );
        assert_eq!(r.to_string(), "race=Middle Eastern");
        for bad in ["race", "=White", "race="] {
            let err = bad.parse::<ReferenceGroup>().unwrap_err();
            assert!(err.contains("ATTR=GROUP"), "{bad}: {err}");
        }
    }
}
