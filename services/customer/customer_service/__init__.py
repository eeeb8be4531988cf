"""The customer service: the customer archive (客户档案管理) of the sales department."""
