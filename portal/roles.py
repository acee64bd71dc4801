"""The portal's roles (DESIGN §2) as Django groups, and the per-TRE object permissions.

A user's role says what kind of work they do; guardian object permissions on a TRE say
where they may do it (an officer of TRE A decides only for TRE A).
"""

RESEARCHER = "researcher"
PROJECT_LEAD = "project_lead"
GOVERNANCE_OFFICER = "governance_officer"
OUTPUT_CHECKER = "output_checker"
AUDITOR = "auditor"
PPIE = "ppie"
FEDERATION_ADMIN = "federation_admin"

ROLES = {
    RESEARCHER: "Researcher",
    PROJECT_LEAD: "Project lead",
    GOVERNANCE_OFFICER: "Governance officer",
    OUTPUT_CHECKER: "Output checker",
    AUDITOR: "Auditor",
    PPIE: "PPIE member",
    FEDERATION_ADMIN: "Federation admin",
}

# Object permissions on a TRE that scope the per-TRE roles.
TRE_ROLE_PERMISSIONS = {
    GOVERNANCE_OFFICER: "govern_tre",
    OUTPUT_CHECKER: "check_outputs_tre",
}
