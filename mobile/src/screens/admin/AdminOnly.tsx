import type { ReactNode } from 'react';

import type { Role } from '../../api/types';
import { useSession } from '../../auth/AuthProvider';
import { useI18n } from '../../i18n/I18n';
import { Message, Screen } from '../../ui/components';

/**
 * Admin screens render only for an admin (or the master). The tab bar never offers them to a
 * user; this is the second line, for a screen reached some other way.
 */
export function AdminOnly({ children, allow = ['admin', 'master'] }: { children: ReactNode; allow?: Role[] }) {
  const { user } = useSession();
  const { t } = useI18n();
  if (!allow.includes(user.role)) {
    return (
      <Screen testID="not-for-you">
        <Message kind="error" text={t.notForYou} testID="not-for-you-message" />
      </Screen>
    );
  }
  return <>{children}</>;
}
