// The Container Apps environment: internal (no public endpoint) on the given subnet, logs to Log Analytics, and
// optionally the Azure Files share that every silo mounts for the platform's shared control state.

@description('Azure region.')
param location string

@description('Name of the Container Apps environment.')
param name string

@description('Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Days Log Analytics keeps the silos\' logs.')
param logRetentionInDays int

@description('Resource id of the subnet delegated to Microsoft.App/environments.')
param subnetId string

@description('Resource id of the virtual network, for the private DNS zone of the environment\'s domain.')
param vnetId string

@description('Storage account holding the shared state file share; empty for no share.')
param stateStorageAccountName string = ''

@description('Name of the file share in that account.')
param stateShareName string = ''

@description('Name under which the environment knows the share (the silos\' volumes refer to it).')
param stateStorageName string = 'platform-state'

param tags object = {}

var withSharedState = !empty(stateStorageAccountName)

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionInDays
  }
}

resource environment 'Microsoft.App/managedEnvironments@2025-01-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: logs.properties.customerId
        sharedKey: logs.listKeys().primarySharedKey
      }
    }
    vnetConfiguration: {
      infrastructureSubnetId: subnetId
      internal: true
    }
    workloadProfiles: [
      {
        name: 'Consumption'
        workloadProfileType: 'Consumption'
      }
    ]
    zoneRedundant: false
  }
}

resource stateAccount 'Microsoft.Storage/storageAccounts@2025-01-01' existing = if (withSharedState) {
  name: stateStorageAccountName
}

// Azure Files over SMB: Container Apps mounts it with the account key (managed identities cannot mount SMB shares).
// The key stays in the environment's storage definition; the silos' configuration never sees it.
resource stateStorage 'Microsoft.App/managedEnvironments/storages@2025-01-01' = if (withSharedState) {
  parent: environment
  name: stateStorageName
  properties: {
    azureFile: {
      accountName: stateStorageAccountName
      accountKey: stateAccount!.listKeys().keys[0].value
      shareName: stateShareName
      accessMode: 'ReadWrite'
    }
  }
}

// The environment is internal: its apps' host names resolve only through a private zone linked to the network.
module privateDns 'private-dns.bicep' = {
  name: '${name}-dns'
  params: {
    zoneName: environment.properties.defaultDomain
    staticIp: environment.properties.staticIp
    vnetId: vnetId
    tags: tags
  }
}

@description('Resource id of the environment.')
output environmentId string = environment.id

@description('Name of the environment.')
output environmentName string = environment.name

@description('The environment\'s private IP: every silo advertises it, each with its own ports.')
output staticIp string = environment.properties.staticIp

@description('The environment\'s DNS domain (resolvable inside the virtual network).')
output defaultDomain string = environment.properties.defaultDomain

@description('Name under which the environment knows the shared state share; empty when there is none.')
output stateStorageName string = withSharedState ? stateStorage.name : ''

@description('Resource id of the Log Analytics workspace.')
output logAnalyticsId string = logs.id
