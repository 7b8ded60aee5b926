// The platform's storage account, reached with the silos' managed identity (shared keys are disabled on it): a blob
// container for checkpoints and savepoints, one for the control state (Orleans' Azure Blob grain storage of
// platform-state and PubSubStore), and the table of Orleans' membership (Azure Table clustering). Optionally a second
// account with the Azure Files share the silos mount for their control state instead (SMB mounts need the account key,
// so it lives apart).
// With publicNetworkAccess 'Disabled' neither account answers on its public endpoints: the data reaches them only
// through private endpoints (main.bicep adds them). Creating containers and shares is a management operation (Azure
// Resource Manager), which works either way.

@description('Azure region.')
param location string

@description('Name of the checkpoint storage account (3-24 lowercase letters and digits, globally unique).')
@minLength(3)
@maxLength(24)
param checkpointAccountName string

@description('Name of the blob container for checkpoints.')
param checkpointContainerName string

@description('Name of the blob container for the control state (Orleans grain storage platform-state and PubSubStore).')
param grainStateContainerName string = 'grainstate'

@description('Name of the table of Orleans\' membership (the silos set Orleans:Clustering:TableName to it).')
param membershipTableName string = 'OrleansSiloInstances'

@description('Principal (object) id of the silos\' managed identity.')
param siloPrincipalId string

@description('Name of the storage account holding the shared state share; empty for none.')
@maxLength(24)
param stateAccountName string = ''

@description('Name of the shared state file share.')
param stateShareName string = 'platform-state'

@description('Size of the shared state share in GiB.')
@minValue(1)
param stateShareQuotaGiB int = 100

@description('Whether the accounts accept data requests on their public endpoints; Disabled: only through private endpoints.')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

param tags object = {}

// Storage Blob Data Contributor: read, write and delete blobs. Storage Table Data Contributor: read, write and delete
// tables and entities (Orleans creates its membership table if it is missing).
var blobDataContributorRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'ba92f5b4-2d11-453d-a403-e96b0029c9fe')
var tableDataContributorRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')

resource checkpointAccount 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  name: checkpointAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: checkpointAccount
  name: 'default'
}

resource checkpointContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: checkpointContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource grainStateContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: grainStateContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2025-01-01' = {
  parent: checkpointAccount
  name: 'default'
}

resource membershipTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2025-01-01' = {
  parent: tableService
  name: membershipTableName
}

// On the account: the checkpoint and the control state containers (Orleans' grain storage also asks to create its
// container, which needs more than a container's scope).
resource checkpointAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(checkpointAccount.id, siloPrincipalId, blobDataContributorRoleId)
  scope: checkpointAccount
  properties: {
    principalId: siloPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: blobDataContributorRoleId
  }
}

resource membershipAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(checkpointAccount.id, siloPrincipalId, tableDataContributorRoleId)
  scope: checkpointAccount
  properties: {
    principalId: siloPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: tableDataContributorRoleId
  }
}

resource stateAccount 'Microsoft.Storage/storageAccounts@2025-01-01' = if (!empty(stateAccountName)) {
  name: stateAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
  }
}

resource fileService 'Microsoft.Storage/storageAccounts/fileServices@2025-01-01' = if (!empty(stateAccountName)) {
  parent: stateAccount
  name: 'default'
}

resource stateShare 'Microsoft.Storage/storageAccounts/fileServices/shares@2025-01-01' = if (!empty(stateAccountName)) {
  parent: fileService
  name: stateShareName
  properties: {
    accessTier: 'TransactionOptimized'
    enabledProtocols: 'SMB'
    shareQuota: stateShareQuotaGiB
  }
}

@description('Name of the checkpoint storage account.')
output checkpointAccountName string = checkpointAccount.name

@description('Resource id of the checkpoint storage account (target of its blob private endpoint).')
output checkpointAccountId string = checkpointAccount.id

@description('Blob endpoint of the checkpoint storage account (https://<account>.blob.<suffix>/).')
output checkpointBlobEndpoint string = checkpointAccount.properties.primaryEndpoints.blob

@description('Name of the checkpoint container.')
output checkpointContainerName string = checkpointContainer.name

@description('Table endpoint of the storage account (https://<account>.table.<suffix>/).')
output tableEndpoint string = checkpointAccount.properties.primaryEndpoints.table

@description('Name of the control state container.')
output grainStateContainerName string = grainStateContainer.name

@description('Name of the membership table.')
output membershipTableName string = membershipTable.name

@description('Id of the role assignment that lets the silos write checkpoints and control state (deploy silos after it).')
output checkpointAccessId string = checkpointAccess.id

@description('Id of the role assignment that lets the silos write the membership table (deploy silos after it).')
output membershipAccessId string = membershipAccess.id

@description('Name of the shared state storage account; empty when there is none.')
output stateAccountName string = empty(stateAccountName) ? '' : stateAccount.name

@description('Resource id of the shared state storage account (target of its file private endpoint); empty when there is none.')
output stateAccountId string = empty(stateAccountName) ? '' : stateAccount.id

@description('Name of the shared state share; empty when there is none.')
output stateShareName string = empty(stateAccountName) ? '' : stateShare.name
