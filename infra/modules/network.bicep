// The virtual network of the Container Apps environment: one subnet delegated to Microsoft.App/environments.
// A workload-profiles environment needs at least a /27; a /23 leaves room for many silo apps and their revisions.

@description('Azure region.')
param location string

@description('Name of the virtual network.')
param name string

@description('Address space of the virtual network.')
param addressPrefix string

@description('Address range of the subnet the Container Apps environment owns (at least /27).')
param environmentSubnetPrefix string

param tags object = {}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'container-apps'
        properties: {
          addressPrefix: environmentSubnetPrefix
          delegations: [
            {
              name: 'Microsoft.App.environments'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
    ]
  }
}

@description('Resource id of the virtual network.')
output vnetId string = vnet.id

@description('Resource id of the subnet delegated to the Container Apps environment.')
output environmentSubnetId string = vnet.properties.subnets[0].id
