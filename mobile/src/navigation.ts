// Which screens each role gets. A user's tabs hold no admin screen at all; the admin screens
// also check the role themselves (AdminOnly).
import type { ComponentType } from 'react';

import type { Role } from './api/types';
import type { Strings } from './i18n/strings';
import { AdminQueueScreen } from './screens/admin/AdminQueueScreen';
import { PumpScreen } from './screens/admin/PumpScreen';
import { RequestsScreen } from './screens/admin/RequestsScreen';
import { UsersScreen } from './screens/admin/UsersScreen';
import { AdminsScreen } from './screens/master/AdminsScreen';
import { NotificationsScreen } from './screens/NotificationsScreen';
import { HistoryScreen } from './screens/user/HistoryScreen';
import { HomeScreen } from './screens/user/HomeScreen';
import { QueueScreen } from './screens/user/QueueScreen';
import { RequestScreen } from './screens/user/RequestScreen';
import { WalletScreen } from './screens/user/WalletScreen';

export interface Tab {
  id: string;
  label: (t: Strings) => string;
  Screen: ComponentType;
}

const USER_TABS: Tab[] = [
  { id: 'home', label: (t) => t.tabHome, Screen: HomeScreen },
  { id: 'queue', label: (t) => t.tabQueue, Screen: QueueScreen },
  { id: 'wallet', label: (t) => t.tabWallet, Screen: WalletScreen },
  { id: 'request', label: (t) => t.tabRequest, Screen: RequestScreen },
  { id: 'history', label: (t) => t.tabHistory, Screen: HistoryScreen },
  { id: 'alerts', label: (t) => t.tabAlerts, Screen: NotificationsScreen },
];

const ADMIN_TABS: Tab[] = [
  { id: 'pump', label: (t) => t.tabPump, Screen: PumpScreen },
  { id: 'admin-queue', label: (t) => t.tabQueue, Screen: AdminQueueScreen },
  { id: 'users', label: (t) => t.tabUsers, Screen: UsersScreen },
  { id: 'requests', label: (t) => t.tabRequests, Screen: RequestsScreen },
  { id: 'alerts', label: (t) => t.tabAlerts, Screen: NotificationsScreen },
];

const MASTER_TABS: Tab[] = [{ id: 'admins', label: (t) => t.tabAdmins, Screen: AdminsScreen }];

export function tabsFor(role: Role): Tab[] {
  switch (role) {
    case 'admin':
      return ADMIN_TABS;
    case 'master':
      return MASTER_TABS;
    default:
      return USER_TABS;
  }
}

/** Whether the role watches a motor (the master has no tenant of its own). */
export function watchesMotor(role: Role): boolean {
  return role !== 'master';
}
