package access

import (
	"regexp"
	"strings"
)

// The IAM ARN forms an on-premises instance may be registered with, and
// so the principals a host key may sign as.
var (
	iamUserArn    = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:user/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$`)
	iamSessionArn = regexp.MustCompile(`^arn:aws[a-z-]*:sts::[0-9]{12}:assumed-role/[\w+=,.@-]{1,64}/[\w+=,.@-]{2,64}$`)
)

// IsIAMUserArn reports whether arn is an IAM user ARN
// (arn:aws:iam::ACCOUNT:user/[PATH/]NAME).
func IsIAMUserArn(arn string) bool { return iamUserArn.MatchString(arn) }

// IsIAMSessionArn reports whether arn is an STS assumed-role session ARN
// (arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION).
func IsIAMSessionArn(arn string) bool { return iamSessionArn.MatchString(arn) }

// ArnAccount returns the account field of an ARN ("" if it has none).
func ArnAccount(arn string) string {
	f := strings.SplitN(arn, ":", 6)
	if len(f) < 5 {
		return ""
	}
	return f[4]
}
